//! `ct-rollout`: the rollout toolkit's command line. For now one command, `report`: read
//! the shadow artifacts of one or more runs, aggregate them, check the manifest's gates and
//! render the result. (`status`, `flip-default` and `delete-legacy` edit the manifest and
//! are not built yet.)

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use ct_reports::{aggregate, all_passed, check, load_run, render, Format, Gates};

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
        /// Run directories (default: ./trace-out).
        #[arg(value_name = "RUN_DIR")]
        runs: Vec<PathBuf>,
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
            runs,
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
            let runs = if runs.is_empty() {
                vec![PathBuf::from("trace-out")]
            } else {
                runs
            };
            let mut loaded = Vec::with_capacity(runs.len());
            for dir in &runs {
                match load_run(dir) {
                    Ok(r) => loaded.push(r),
                    Err(e) => {
                        eprintln!("ct-rollout: error: {e}");
                        return 2;
                    }
                }
            }
            let agg = aggregate(&loaded);
            let results = check(&agg, &gates);
            let format = match format {
                ReportFormat::Table => Format::Table,
                ReportFormat::Markdown => Format::Markdown,
                ReportFormat::Json => Format::Json,
            };
            let status = crate::cli::print_out(&render(&agg, &results, format));
            if check_gates && !all_passed(&results) {
                return 1;
            }
            status
        }
    }
}
