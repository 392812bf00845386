//! `ct-rollout`: the rollout toolkit's command line. For now one command, `report`: read
//! the evidence of one or more runs ([`EvidenceArgs`]: run directories and/or
//! `--prometheus`), aggregate it, check the manifest's gates and render the result.
//! (`status`, `flip-default` and `delete-legacy` edit the manifest and are not built yet.)

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ct_reports::{
    assess, load_evidence, parse_since, render, Evidence, Format, Gates, PrometheusSource,
    DEFAULT_SINCE,
};

/// The manifest this build was made with (the same file `build.rs` reads).
const BUILT_MANIFEST: &str = include_str!("../rollout.toml");

#[derive(Parser, Debug)]
#[command(
    name = "ct-rollout",
    version,
    about = "Evidence and gates for the module-naming rollout."
)]
struct RolloutCli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Aggregate the shadow artifacts of runs (each RUN_DIR is a `ct-record --trace-dir`
    /// directory) and check the rollout gates.
    Report {
        #[command(flatten)]
        evidence: EvidenceArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
        /// Exit with status 1 when a gate fails (for CI).
        #[arg(long)]
        check: bool,
        /// Read the gates from this manifest instead of the one the tool was built with.
        #[arg(long, value_name = "PATH")]
        manifest: Option<PathBuf>,
    },
    /// Print a shell completion script for ct-rollout (e.g. `ct-rollout completions bash >
    /// ~/.local/share/bash-completion/completions/ct-rollout`).
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Where the evidence comes from: shared by every command that gates on evidence.
#[derive(Args, Debug, Clone)]
pub struct EvidenceArgs {
    /// Run directories (`ct-record --trace-dir`; default: ./trace-out, unless --prometheus
    /// is given). With --prometheus they add file names, deciding rules and examples to the
    /// runs Prometheus counts (same run id: counted once).
    #[arg(value_name = "RUN_DIR")]
    pub runs: Vec<PathBuf>,
    /// Read the recorders' counters from this Prometheus server (its HTTP query API), as
    /// scraped from `--metrics-addr` or pushed with `--metrics-push`.
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// With --prometheus: the window, back from now (`90m`, `36h`, `7d`).
    #[arg(long, value_name = "DURATION", requires = "prometheus")]
    pub since: Option<String>,
    /// With --prometheus: label matchers selecting the runs, e.g. '{job="ct-record",env="ci"}'.
    #[arg(long = "match", value_name = "SELECTOR", requires = "prometheus")]
    pub matchers: Option<String>,
}

impl EvidenceArgs {
    /// The evidence, each run counted once; `Err` is the message for a status-2 exit.
    pub fn load(&self) -> Result<Evidence, String> {
        let runs = if self.runs.is_empty() && self.prometheus.is_none() {
            vec![PathBuf::from("trace-out")]
        } else {
            self.runs.clone()
        };
        let evidence = load_evidence(&runs).map_err(|e| e.to_string())?;
        let Some(url) = &self.prometheus else {
            return Ok(evidence);
        };
        let since_text = self.since.as_deref().unwrap_or(DEFAULT_SINCE);
        let source = PrometheusSource {
            url: url.clone(),
            since: parse_since(since_text)?,
            matchers: self.matchers.clone(),
        };
        let from_prometheus = source.load().map_err(|e| e.to_string())?;
        Ok(evidence.with_prometheus(url, since_text, from_prometheus))
    }
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ReportFormat {
    Table,
    Markdown,
    Json,
}

/// Runs `ct-rollout` with `argv`; returns the exit status (0 ok, 1 gates failed with
/// `--check`, 2 usage or input errors).
pub fn main(argv: Vec<std::ffi::OsString>) -> i32 {
    let cli = match RolloutCli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    match cli.command {
        Command::Completions { shell } => {
            use clap::CommandFactory;
            crate::cli::print_completions(shell, RolloutCli::command(), "ct-rollout")
        }
        Command::Report {
            evidence,
            format,
            check: check_gates,
            manifest,
        } => {
            let manifest_text = match &manifest {
                Some(path) => match std::fs::read_to_string(path) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("ct-rollout: error: cannot read {}: {e}", path.display());
                        return 2;
                    }
                },
                None => BUILT_MANIFEST.to_owned(),
            };
            let gates = match Gates::from_manifest(&manifest_text) {
                Ok(g) => g,
                Err(e) => {
                    eprintln!("ct-rollout: error: {e}");
                    return 2;
                }
            };
            // Each run counts once, however many arguments or sources reach it.
            let evidence = match evidence.load() {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("ct-rollout: error: {e}");
                    return 2;
                }
            };
            let assessment = assess(&evidence, &gates);
            let format = match format {
                ReportFormat::Table => Format::Table,
                ReportFormat::Markdown => Format::Markdown,
                ReportFormat::Json => Format::Json,
            };
            let status =
                crate::cli::print_out(&render(&assessment.aggregate, &assessment.gates, format));
            if check_gates && !assessment.passed() {
                return 1;
            }
            status
        }
    }
}
