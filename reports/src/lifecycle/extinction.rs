//! The extinction check of `delete-legacy`: since the flip, is anyone still choosing the
//! legacy engine? A team that opted out must be seen before its opt-out disappears.

use crate::RunReport;

use super::manifest::RepoManifest;

/// The verdict: the failing conditions (empty when the check passes).
#[derive(Debug, Default)]
pub struct Extinction {
    /// Runs recorded after the flip.
    pub after_flip: Vec<String>,
    /// Of those, the runs whose primary engine was legacy (an opt-out still in use).
    pub legacy_runs: Vec<String>,
    /// Runs left out because they started before the flip.
    pub before_flip: u64,
    pub failures: Vec<String>,
}

impl Extinction {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs the check over `runs` against the manifest's `min_runs` and the flip's audit time.
pub fn check_extinction(m: &RepoManifest, runs: &[RunReport]) -> Extinction {
    let mut out = Extinction::default();
    let flip_time = m.last_entry_to("globals-default").and_then(|h| {
        humantime::parse_rfc3339(&h.time)
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64())
    });
    let Some(flip_time) = flip_time else {
        out.failures.push(
            "no audit entry records the flip (a [[history]] entry with to = \
             \"globals-default\" and a valid time), so no evidence can be dated after it: \
             flip with ct-rollout flip-default"
                .to_owned(),
        );
        return out;
    };
    for run in runs {
        let started = run.summary.run.meta.started_unix_seconds;
        if started < flip_time {
            out.before_flip += 1;
            continue;
        }
        let id = run.label();
        if run.summary.run.primary == ct_shadow::Engine::Legacy {
            out.legacy_runs.push(id.clone());
        }
        out.after_flip.push(id);
    }
    let min_runs = m.gates.min_runs.unwrap_or(1);
    let n = out.after_flip.len() as u64;
    if n < min_runs {
        out.failures.push(format!(
            "{n} shadow run(s) recorded after the flip ({}), at least {min_runs} required \
             (gates.min_runs); {} older run(s) do not count: record shadow runs on the \
             workloads that still run (ct-record --shadow-compare)",
            m.last_entry_to("globals-default")
                .map(|h| h.time.as_str())
                .unwrap_or("?"),
            out.before_flip
        ));
    }
    if !out.legacy_runs.is_empty() {
        out.failures.push(format!(
            "{} run(s) since the flip still chose the legacy engine as primary (an opt-out \
             in use): {}; find who runs them and move them to the globals engine first",
            out.legacy_runs.len(),
            out.legacy_runs.join(", ")
        ));
    }
    out
}
