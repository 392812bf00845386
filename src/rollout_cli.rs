//! `ct-rollout`: the rollout toolkit's command line (the code is in `ct_reports`; this is
//! the glue). Commands:
//! - `report`: aggregate the shadow evidence of runs and check the gates;
//! - `status`: where the rollout stands, and the next command;
//! - `flip-default` (and `--revert`): make the globals engine the default;
//! - `delete-legacy`: remove the legacy engine from the code;
//! - `fix-filters`: edit filter rules whose decision changes under the new names.
//!
//! Every command acts on the repository holding `rollout.toml` (found upward from the
//! working directory, or `--repo DIR`) and reads its manifest at run time. The gates of
//! every command come from one function, [`evaluate`], which is what `report --check` uses.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use ct_reports::fix_filters;
use ct_reports::lifecycle::{
    delete, extinction, flip, manifest, status, ChangeSet, LifecycleError, Repo, RepoManifest,
};
use ct_reports::{
    assess, load_evidence, parse_since, render, Assessment, Evidence, Format, Gates,
    PrometheusSource, RunReport, DEFAULT_SINCE,
};

/// The manifest this build was made with (the same file `build.rs` reads): the gates of
/// `report` outside any repository.
const BUILT_MANIFEST: &str = include_str!("../rollout.toml");

#[derive(Parser, Debug)]
#[command(
    name = "ct-rollout",
    version,
    about = "Evidence, gates and the lifecycle of the module-naming rollout."
)]
struct RolloutCli {
    /// The repository to act on (the directory holding rollout.toml); default: found
    /// upward from the working directory.
    #[arg(long, value_name = "DIR", global = true)]
    repo: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// Where the evidence comes from: shared by every command that gates on evidence.
#[derive(Args, Debug, Clone, Default)]
pub struct EvidenceArgs {
    /// Run directories (`ct-record --trace-dir`; for `report` the default is ./trace-out,
    /// unless --prometheus is given). With --prometheus they add file names, deciding rules
    /// and examples to the runs Prometheus counts (same run id: counted once).
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
    /// Whether any evidence source was given.
    pub fn given(&self) -> bool {
        !self.runs.is_empty() || self.prometheus.is_some()
    }

    /// The evidence, each run counted once; `Err` is the message for a status-2 exit.
    /// Without any source: `./trace-out` when `default_dir`, else no runs at all.
    pub fn load(&self, default_dir: bool) -> Result<Evidence, String> {
        let runs = if !self.given() && default_dir {
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

    /// The arguments again, for the next command `status` prints.
    fn to_args(&self) -> String {
        let mut out: Vec<String> = self.runs.iter().map(|p| p.display().to_string()).collect();
        if let Some(url) = &self.prometheus {
            out.push(format!("--prometheus {url}"));
        }
        if let Some(since) = &self.since {
            out.push(format!("--since {since}"));
        }
        if let Some(m) = &self.matchers {
            out.push(format!("--match '{m}'"));
        }
        out.join(" ")
    }
}

/// `--dry-run`, `--yes`, `--force --reason` of the commands that change files.
#[derive(Args, Debug, Clone)]
struct ChangeArgs {
    /// Print the diff and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Apply without asking (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    yes: bool,
    /// Go ahead although a gate or precondition fails (needs --reason, recorded in the
    /// audit trail).
    #[arg(long, requires = "reason")]
    force: bool,
    /// Why (recorded in the audit trail): required with --force and --revert.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
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
        /// Read the gates from this manifest (default: the repository's rollout.toml, or
        /// the one this tool was built with outside any repository).
        #[arg(long, value_name = "PATH")]
        manifest: Option<PathBuf>,
    },
    /// The phase, the flag's default (the engine a fresh build uses), the audit history,
    /// and with evidence the gates and the exact next command.
    Status {
        #[command(flatten)]
        evidence: EvidenceArgs,
        #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
        format: StatusFormat,
    },
    /// Make the globals engine the default: rollout.toml (phase globals-default, default =
    /// true, an audit entry), CHANGELOG.md and ADR 0016, as one atomic change.
    FlipDefault {
        #[command(flatten)]
        evidence: EvidenceArgs,
        #[command(flatten)]
        change: ChangeArgs,
        /// The incident path: back to phase shadow and default = false (needs --reason).
        #[arg(long, requires = "reason", conflicts_with = "force")]
        revert: bool,
    },
    /// Remove the legacy engine from the code (its folder, the feature, every item gated on
    /// it, the marked doc sections), set phase legacy-deleted, and verify the result.
    DeleteLegacy {
        #[command(flatten)]
        evidence: EvidenceArgs,
        #[command(flatten)]
        change: ChangeArgs,
        /// Do not run the project check ([lifecycle] verify) on the result.
        #[arg(long)]
        no_verify: bool,
    },
    /// Propose edits of the project filter files under which both engines' module names get
    /// the decision the legacy name gets today (from the runs' filter decision changes), show
    /// the diff and re-evaluate every change offline with the edited filters.
    FixFilters {
        #[command(flatten)]
        evidence: EvidenceArgs,
        /// Apply the edits (atomically: every file or none). Without it nothing is changed.
        #[arg(long)]
        write: bool,
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

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum StatusFormat {
    Table,
    Json,
}

/// Evidence, judged.
pub struct Judged {
    pub evidence: Evidence,
    pub assessment: Assessment,
}

impl Judged {
    fn run_ids(&self) -> Vec<String> {
        self.evidence.runs.iter().map(RunReport::label).collect()
    }
}

/// Loads the evidence and checks `gates` with [`assess`], the one evaluation every command
/// uses (`report --check` included).
pub fn evaluate(
    evidence: &EvidenceArgs,
    gates: &Gates,
    default_dir: bool,
) -> Result<Judged, String> {
    let evidence = evidence.load(default_dir)?;
    let assessment = assess(&evidence, gates);
    Ok(Judged {
        evidence,
        assessment,
    })
}

/// Runs `ct-rollout` with `argv`; returns the exit status (0 ok, 1 refused or gates failed
/// with `--check`, 2 usage or input errors).
pub fn main(argv: Vec<std::ffi::OsString>) -> i32 {
    let cli = match RolloutCli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let result = match cli.command {
        Command::Completions { shell } => {
            use clap::CommandFactory;
            Ok(crate::cli::print_completions(
                shell,
                RolloutCli::command(),
                "ct-rollout",
            ))
        }
        Command::Report {
            evidence,
            format,
            check,
            manifest,
        } => report(cli.repo.as_deref(), &cwd, evidence, format, check, manifest),
        Command::Status { evidence, format } => {
            cmd_status(cli.repo.as_deref(), &cwd, &evidence, format)
        }
        Command::FlipDefault {
            evidence,
            change,
            revert,
        } => cmd_flip(cli.repo.as_deref(), &cwd, &evidence, &change, revert),
        Command::DeleteLegacy {
            evidence,
            change,
            no_verify,
        } => cmd_delete(cli.repo.as_deref(), &cwd, &evidence, &change, no_verify),
        Command::FixFilters { evidence, write } => cmd_fix_filters(&cwd, &evidence, write),
    };
    match result {
        Ok(status) => status,
        Err(LifecycleError::Refused(reasons)) => {
            eprintln!("ct-rollout: refused, nothing was changed:");
            for r in reasons {
                eprintln!("  - {r}");
            }
            1
        }
        Err(LifecycleError::Usage(m)) => {
            eprintln!("ct-rollout: error: {m}");
            2
        }
        Err(LifecycleError::Io(m)) => {
            eprintln!("ct-rollout: error: {m}");
            1
        }
    }
}

fn report(
    repo: Option<&Path>,
    cwd: &Path,
    evidence: EvidenceArgs,
    format: ReportFormat,
    check_gates: bool,
    manifest: Option<PathBuf>,
) -> Result<i32, LifecycleError> {
    let manifest_text = match &manifest {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| LifecycleError::Usage(format!("cannot read {}: {e}", path.display())))?,
        // Only the gates matter here: read them from the repository's file as it is now.
        None => match Repo::find(repo, cwd) {
            Ok(r) => std::fs::read_to_string(r.manifest_path()).map_err(|e| {
                LifecycleError::Usage(format!("cannot read {}: {e}", r.manifest_path().display()))
            })?,
            // An explicit --repo that is wrong is an error; outside any repository the
            // gates are the ones this tool was built with.
            Err(e) if repo.is_some() => return Err(e),
            Err(_) => BUILT_MANIFEST.to_owned(),
        },
    };
    let gates =
        Gates::from_manifest(&manifest_text).map_err(|e| LifecycleError::Usage(e.to_string()))?;
    // Each run counts once, however many arguments or sources reach it.
    let ev = evaluate(&evidence, &gates, true).map_err(LifecycleError::Usage)?;
    let format = match format {
        ReportFormat::Table => Format::Table,
        ReportFormat::Markdown => Format::Markdown,
        ReportFormat::Json => Format::Json,
    };
    let status = crate::cli::print_out(&render(
        &ev.assessment.aggregate,
        &ev.assessment.gates,
        format,
    ));
    if check_gates && !ev.assessment.passed() {
        return Ok(1);
    }
    Ok(status)
}

fn load(repo: Option<&Path>, cwd: &Path) -> Result<RepoManifest, LifecycleError> {
    RepoManifest::load(&Repo::find(repo, cwd)?)
}

fn cmd_status(
    repo: Option<&Path>,
    cwd: &Path,
    evidence: &EvidenceArgs,
    format: StatusFormat,
) -> Result<i32, LifecycleError> {
    let m = load(repo, cwd)?;
    let installed = status::Installed {
        phase: crate::policy::rollout::PHASE.as_str().to_owned(),
        default: crate::policy::rollout::MODULE_NAME_FROM_GLOBALS_DEFAULT,
        legacy_engine_built: crate::naming::legacy_engine().is_some(),
    };
    let (runs, gates, ext) = if !evidence.given() {
        (Vec::new(), None, None)
    } else {
        let ev = evaluate(evidence, &m.gates, false).map_err(LifecycleError::Usage)?;
        let ext = (m.phase == "globals-default")
            .then(|| extinction::check_extinction(&m, &ev.evidence.runs).failures);
        (ev.run_ids(), Some(ev.assessment.gates), ext)
    };
    let s = status::status(&m, installed, runs, gates, ext, &evidence.to_args());
    let text = match format {
        StatusFormat::Table => status::render_text(&s),
        StatusFormat::Json => {
            let mut t = serde_json::to_string_pretty(&s).unwrap_or_default();
            t.push('\n');
            t
        }
    };
    Ok(crate::cli::print_out(&text))
}

/// `--reason` given, and not blank.
fn reason(change: &ChangeArgs, why: &str) -> Result<Option<String>, LifecycleError> {
    match change.reason.as_deref().map(str::trim) {
        Some("") => Err(LifecycleError::Usage(format!(
            "--reason must say why ({why}); it is recorded in the audit trail"
        ))),
        other => Ok(other.map(str::to_owned)),
    }
}

/// Prints the diff, asks (unless --yes or --dry-run) and applies. Returns the status.
fn present_and_apply(
    changes: &ChangeSet,
    summary: &str,
    change: &ChangeArgs,
    verify: Option<&[String]>,
) -> Result<i32, LifecycleError> {
    let mut out = changes.diff();
    out.push_str(&format!(
        "\nct-rollout: {summary}: {} file(s): {}\n",
        changes.changes.len(),
        changes.paths().join(", ")
    ));
    if crate::cli::print_out(&out) != 0 {
        return Ok(1);
    }
    if change.dry_run {
        println!("ct-rollout: --dry-run: nothing was changed");
        return Ok(0);
    }
    if !change.yes {
        if !std::io::stdin().is_terminal() {
            return Err(LifecycleError::Refused(vec![
                "stdin is not a terminal, so there is no one to confirm: pass --yes to apply \
                 (or --dry-run to only see the diff)"
                    .to_owned(),
            ]));
        }
        eprint!("Apply these changes? [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            return Err(LifecycleError::Refused(vec!["not confirmed".to_owned()]));
        }
    }
    let applied = changes.apply()?;
    if let Some(commands) = verify {
        if let Err(failure) = run_verify(&changes.root, commands) {
            applied.restore()?;
            eprintln!("{failure}");
            eprintln!(
                "ct-rollout: verification failed: every file was restored, nothing changed \
                 (use --no-verify to skip the check)"
            );
            return Ok(1);
        }
    }
    applied.finish();
    println!("ct-rollout: done: {summary}");
    Ok(0)
}

/// Runs each verify command with `sh -c` in the repository; `Err` has the failing
/// command and the tail of its output.
fn run_verify(root: &Path, commands: &[String]) -> Result<(), String> {
    for cmd in commands {
        eprintln!("ct-rollout: verify: {cmd}");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(root)
            .output()
            .map_err(|e| format!("ct-rollout: verify: cannot run `{cmd}`: {e}"))?;
        if !out.status.success() {
            let mut all = String::from_utf8_lossy(&out.stdout).into_owned();
            all.push_str(&String::from_utf8_lossy(&out.stderr));
            let lines: Vec<&str> = all.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            return Err(format!(
                "ct-rollout: verify: `{cmd}` failed ({}); the last lines of its output:\n{tail}",
                out.status
            ));
        }
    }
    Ok(())
}

fn cmd_flip(
    repo: Option<&Path>,
    cwd: &Path,
    evidence: &EvidenceArgs,
    change: &ChangeArgs,
    revert: bool,
) -> Result<i32, LifecycleError> {
    let m = load(repo, cwd)?;
    let ev = evaluate(evidence, &m.gates, false).map_err(LifecycleError::Usage)?;
    let run_ids = ev.run_ids();
    let plan = if revert {
        let why = reason(change, "what went wrong")?.unwrap_or_default();
        flip::plan_revert(&m, &why, &run_ids, &ev.assessment.gates)?
    } else {
        let why = reason(change, "why the failing gates are acceptable")?;
        flip::plan_flip(
            &m,
            &flip::FlipRequest {
                force: flip::Force {
                    force: change.force,
                    reason: why.as_deref(),
                },
                run_ids: &run_ids,
                results: &ev.assessment.gates,
            },
        )?
    };
    match plan {
        flip::Plan::NothingToDo(msg) => {
            println!("ct-rollout: {msg}");
            Ok(0)
        }
        flip::Plan::Change { changes, summary } => {
            present_and_apply(&changes, &summary, change, None)
        }
    }
}

fn cmd_delete(
    repo: Option<&Path>,
    cwd: &Path,
    evidence: &EvidenceArgs,
    change: &ChangeArgs,
    no_verify: bool,
) -> Result<i32, LifecycleError> {
    let m = load(repo, cwd)?;
    if m.phase == "legacy-deleted" {
        println!("ct-rollout: nothing to do: phase is already legacy-deleted");
        return Ok(0);
    }
    let ev = evaluate(evidence, &m.gates, false).map_err(LifecycleError::Usage)?;
    let why = reason(change, "why the precondition does not matter")?;
    let mut failures = Vec::new();
    if m.phase != "globals-default" {
        failures.push(format!(
            "phase is {}, not globals-default: flip the default first (ct-rollout flip-default)",
            m.phase
        ));
    }
    let ext = extinction::check_extinction(&m, &ev.evidence.runs);
    failures.extend(ext.failures.iter().cloned());
    if !failures.is_empty() && !change.force {
        failures.push(
            "fix the above and run again, or override with --force --reason TEXT (recorded \
             in the audit trail)"
                .to_owned(),
        );
        return Err(LifecycleError::Refused(failures));
    }
    let forced = !failures.is_empty();
    let entry = manifest::new_entry(
        "delete-legacy",
        &m.phase,
        "legacy-deleted",
        forced,
        why.as_deref(),
        &ev.run_ids(),
        &ev.assessment.gates,
    );
    let mut changes = ChangeSet::new(&m.repo.root);
    delete::plan_removal(&m.repo.root, &mut changes)?;
    changes.write(
        manifest::MANIFEST_FILE,
        manifest::edited_manifest(&m.text, "legacy-deleted", true, &entry)?,
    )?;
    flip::edit_changelog(
        &mut changes,
        "Removed",
        &format!(
            "- The legacy module-name resolver (`src/naming/legacy/`, cargo feature \
             `legacy-resolver`): module names come from `__name__` only. Asking for the \
             legacy engine (`--no-module-name-from-globals`, \
             `CODETRACER_MODULE_NAME_FROM_GLOBALS=0`, the config key) is now an error \
             (rollout phase `legacy-deleted`, {}).",
            &entry.time[..10]
        ),
    )?;
    let summary = format!(
        "legacy engine deleted, phase {} -> legacy-deleted{}",
        m.phase,
        if forced { " (forced)" } else { "" }
    );
    let verify = (!no_verify).then_some(m.verify.as_slice());
    present_and_apply(&changes, &summary, change, verify)
}

fn cmd_fix_filters(
    cwd: &Path,
    evidence: &EvidenceArgs,
    write: bool,
) -> Result<i32, LifecycleError> {
    let ev = evidence.load(true).map_err(LifecycleError::Usage)?;
    let plan = fix_filters::plan(&ev, &crate::filters::OfflineEngine, cwd)
        .map_err(|e| LifecycleError::Usage(e.to_string()))?;
    if crate::cli::print_out(&fix_filters::render(&plan, write)) != 0 {
        return Ok(1);
    }
    if write && !plan.change_set.is_empty() {
        plan.change_set.apply()?.finish();
        println!(
            "ct-rollout: done: {} filter file(s) edited: {}",
            plan.change_set.changes.len(),
            plan.change_set.paths().join(", ")
        );
    }
    Ok(if plan.remaining() == 0 { 0 } else { 1 })
}
