//! What `ct-rollout status` reports: where the rollout stands, what a fresh build does,
//! the audit trail, and with evidence the gates and the next command.

use serde::Serialize;

use super::manifest::{HistoryEntry, RepoManifest};
use crate::GateResult;

/// `ct-rollout status --format json` (schema [`STATUS_SCHEMA`]).
#[derive(Debug, Serialize)]
pub struct Status {
    pub schema: &'static str,
    pub repo: String,
    pub phase: String,
    pub flag: String,
    pub default: bool,
    /// The engine a fresh build from this manifest uses by default.
    pub fresh_build_engine: &'static str,
    /// What the running `ct-rollout` (and the recorder it ships with) was built with.
    pub installed: Installed,
    /// Set when the installed build and the manifest disagree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mismatch: Option<String>,
    pub history: Vec<HistoryEntry>,
    /// The evidence's run ids (empty without run directories).
    pub runs: Vec<String>,
    /// The gates over the evidence (`null` without run directories).
    pub gates: Option<Vec<GateResult>>,
    /// For phase `globals-default`: the extinction check's failures (empty: passed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extinction: Option<Vec<String>>,
    /// The command to run next, if there is one.
    pub next: Option<String>,
    /// Why that is the next step, or why there is none.
    pub why: String,
}

/// `schema` of [`Status`].
pub const STATUS_SCHEMA: &str = "ct-rollout-status/1";

#[derive(Debug, Serialize)]
pub struct Installed {
    pub phase: String,
    pub default: bool,
    pub legacy_engine_built: bool,
}

/// Builds the status. `evidence`: run ids, gate results, extinction failures.
pub fn status(
    m: &RepoManifest,
    installed: Installed,
    runs: Vec<String>,
    gates: Option<Vec<GateResult>>,
    extinction: Option<Vec<String>>,
    run_args: &str,
) -> Status {
    let mismatch = (installed.phase != m.phase || installed.default != m.default).then(|| {
        format!(
            "the installed build was made with phase {} (default = {}), the manifest now says \
             phase {} (default = {}): a fresh build (make build) uses the manifest's",
            installed.phase, installed.default, m.phase, m.default
        )
    });
    let args = if run_args.is_empty() {
        " RUN_DIR...".to_owned()
    } else {
        format!(" {run_args}")
    };
    let (next, why) = match m.phase.as_str() {
        "legacy" => (
            None,
            "phase legacy: set [rollout] phase = \"shadow\" in rollout.toml and record shadow \
             runs (ct-record --shadow-compare) to gather evidence"
                .to_owned(),
        ),
        "shadow" => match &gates {
            None => (
                Some(format!("ct-rollout status{args}")),
                "no evidence given: record shadow runs (ct-record --shadow-compare \
                 --trace-dir DIR ...) and pass their run directories"
                    .to_owned(),
            ),
            Some(g) if g.iter().all(|r| r.passed) => (
                Some(format!("ct-rollout flip-default{args}")),
                "every gate passes: the globals engine can become the default".to_owned(),
            ),
            Some(g) => (
                None,
                format!(
                    "failing gate(s): {}; see ct-rollout report{args}",
                    g.iter()
                        .filter(|r| !r.passed)
                        .map(|r| r.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        },
        "globals-default" => match &extinction {
            None => (
                Some(format!("ct-rollout status{args}")),
                "the globals engine is the default; to delete the legacy engine, give shadow \
                 runs recorded since the flip (the extinction check); if the flip broke \
                 something: ct-rollout flip-default --revert --reason TEXT"
                    .to_owned(),
            ),
            Some(f) if f.is_empty() => (
                Some(format!("ct-rollout delete-legacy{args}")),
                "no run since the flip chose the legacy engine: it can be deleted".to_owned(),
            ),
            Some(f) => (
                None,
                format!("the extinction check fails: {}", f.join("; ")),
            ),
        },
        _ => (
            None,
            "phase legacy-deleted: the migration is complete".to_owned(),
        ),
    };
    Status {
        schema: STATUS_SCHEMA,
        repo: m.repo.root.display().to_string(),
        phase: m.phase.clone(),
        flag: "module_name_from_globals".to_owned(),
        default: m.default,
        fresh_build_engine: m.default_engine(),
        installed,
        mismatch,
        history: m.history.clone(),
        runs,
        gates,
        extinction,
        next,
        why,
    }
}

/// The status as text for a terminal.
pub fn render_text(s: &Status) -> String {
    let mut out = String::new();
    out.push_str(&format!("repository:   {}\n", s.repo));
    out.push_str(&format!("phase:        {}\n", s.phase));
    out.push_str(&format!(
        "flag:         {} default = {} (a fresh build names modules with the {} engine)\n",
        s.flag, s.default, s.fresh_build_engine
    ));
    out.push_str(&format!(
        "installed:    phase {}, default = {}, legacy engine {}\n",
        s.installed.phase,
        s.installed.default,
        if s.installed.legacy_engine_built {
            "built"
        } else {
            "not built"
        }
    ));
    if let Some(m) = &s.mismatch {
        out.push_str(&format!("note:         {m}\n"));
    }
    if s.history.is_empty() {
        out.push_str("history:      (none)\n");
    } else {
        out.push_str("history:\n");
        for h in &s.history {
            out.push_str(&format!(
                "  {}  {:<13} {} -> {}{}{}  ({} runs)\n",
                h.time,
                h.action,
                h.from,
                h.to,
                if h.forced { "  FORCED" } else { "" },
                h.reason
                    .as_deref()
                    .map(|r| format!("  reason: {r}"))
                    .unwrap_or_default(),
                h.runs
            ));
        }
    }
    match &s.gates {
        None => out.push_str("gates:        no evidence given\n"),
        Some(g) => {
            out.push_str(&format!("gates:        over {} run(s)\n", s.runs.len()));
            for r in g {
                out.push_str(&format!(
                    "  {} {:<32} {} {} {}\n",
                    if r.passed { "pass" } else { "FAIL" },
                    r.name,
                    r.actual,
                    r.relation(),
                    r.threshold
                ));
            }
        }
    }
    if let Some(e) = &s.extinction {
        if e.is_empty() {
            out.push_str("extinction:   passed (no run since the flip chose legacy)\n");
        } else {
            out.push_str("extinction:   FAILED\n");
            for f in e {
                out.push_str(&format!("  - {f}\n"));
            }
        }
    }
    match &s.next {
        Some(cmd) => out.push_str(&format!("next:         {cmd}\n              ({})\n", s.why)),
        None => out.push_str(&format!("next:         none: {}\n", s.why)),
    }
    out
}
