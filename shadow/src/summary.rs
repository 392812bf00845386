//! `summary.json` and the one-screen summary printed on stderr at run end.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::{EngineTiming, Metrics, SkipReason};
use crate::model::{Engine, Exec};
use crate::sampling::BudgetState;
use crate::taxonomy::{DivergenceKind, Severity};

/// The `schema` of `summary.json`.
pub const SUMMARY_SCHEMA: &str = "ct-shadow/summary/v1";

/// Facts about the run that only the recorder knows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// The run's id (also the Pushgateway `run_id`).
    pub run_id: String,
    /// `ct-record`'s argv, as given.
    pub command: Vec<String>,
    /// Wall-clock start, seconds since the Unix epoch.
    pub started_unix_seconds: f64,
    /// `sys.version` of the traced interpreter, when known.
    pub python_version: Option<String>,
    /// The traced program's exit status, when it exited normally.
    pub exit_code: Option<i32>,
    /// How the program was started (`None`: not known, e.g. a library caller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<Entry>,
    /// What the run wrote besides the evidence: a trace, or nothing (`--evidence-only`).
    /// Summaries written before the field existed are trace runs.
    #[serde(default)]
    pub recording: Recording,
    /// Where the recorder's trace stopped at its size cap (`--max-trace-size`), when it did.
    /// Comparisons of new code objects went on after the cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_cut: Option<TraceCut>,
    /// The trace filter chain the run's decisions were made with, in chain order (empty: not
    /// known, e.g. a summary written before this field existed). `ct-rollout fix-filters`
    /// re-evaluates the run's filter decision changes against it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter_chain: Vec<FilterSourceRef>,
}

/// Whether a shadow run also wrote a trace. Evidence-only runs are full evidence: the
/// comparison is the same, only the events file is missing.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Recording {
    /// `ct-record --shadow-compare`: the trace and the evidence.
    #[default]
    Trace,
    /// `ct-record --shadow-compare --evidence-only`: the evidence only, no trace.
    EvidenceOnly,
}

impl Recording {
    pub fn as_str(self) -> &'static str {
        match self {
            Recording::Trace => "trace",
            Recording::EvidenceOnly => "evidence-only",
        }
    }
}

/// The trace reached the recorder's size cap: recording stopped, the evidence went on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceCut {
    /// The cap, in bytes.
    pub limit_bytes: u64,
    /// Events in the trace (it ends there).
    pub events: u64,
    /// The events file's size.
    pub bytes: u64,
}

/// One source of a run's filter chain, as `summary.json` records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterSourceRef {
    /// The file's absolute path, or the builtin's name (`<builtin>`); the same text the
    /// divergence records' `rule.source` use.
    pub source: String,
    /// Whether this is the builtin filter (never edited by tools).
    pub builtin: bool,
    /// Lower-case hex SHA-256 of the source's bytes when the run loaded it.
    pub sha256: String,
}

/// How the recorded program was started: what kind of program the evidence covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// `script` (`ct-record SCRIPT`), `module` (`ct-record -m MODULE`) or `api`
    /// (`ct_recorder.start()` inside a running program).
    pub kind: EntryKind,
    /// The script as given, or the module name; `None` for `api`.
    pub target: Option<String>,
    /// The test runner the program is (`pytest`, `unittest`, `nose2`…), when it is one.
    pub test_runner: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Script,
    Module,
    Api,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Script => "script",
            EntryKind::Module => "module",
            EntryKind::Api => "api",
        }
    }
}

/// Test runners recognised by their module name (`-m NAME`) or script name.
pub const TEST_RUNNERS: &[&str] = &["pytest", "py.test", "unittest", "nose2", "nose", "trial"];

impl Entry {
    /// The entry of `ct-record SCRIPT` (`module = false`) or `ct-record -m MODULE`.
    pub fn new(module: bool, target: &str) -> Entry {
        let top = if module {
            target.split('.').next().unwrap_or(target)
        } else {
            let base = target.rsplit(['/', '\\']).next().unwrap_or(target);
            base.strip_suffix(".py").unwrap_or(base)
        };
        let top = top.strip_suffix("-script").unwrap_or(top);
        Entry {
            kind: if module {
                EntryKind::Module
            } else {
                EntryKind::Script
            },
            target: Some(target.to_owned()),
            test_runner: TEST_RUNNERS
                .iter()
                .find(|r| **r == top)
                .map(|r| (*r).to_owned()),
        }
    }

    /// A program that called `ct_recorder.start()` itself.
    pub fn api() -> Entry {
        Entry {
            kind: EntryKind::Api,
            target: None,
            test_runner: None,
        }
    }
}

/// What kind of program the run was, as `summary.json` records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramSection {
    /// How it was started, when known.
    pub entry: Option<Entry>,
    /// Threads whose code objects the shadow compared.
    pub threads: u64,
    /// Whether code ran through `runpy` (`-m`, or `runpy.run_module`/`run_path` inside the
    /// program: `runpy_alias` divergences).
    pub runpy: bool,
}

/// Run metadata as written in the summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSection {
    #[serde(flatten)]
    pub meta: RunMeta,
    pub recorder_version: String,
    pub primary: Engine,
    pub shadow: Option<Engine>,
    /// From session start to the summary.
    pub duration_seconds: f64,
}

/// Divergences of one kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindCount {
    pub severity: Severity,
    pub expected: u64,
    pub unexpected: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DivergenceTotals {
    pub total: u64,
    pub expected: u64,
    pub unexpected: u64,
    /// Every kind, zeros included, keyed by its label value.
    pub by_kind: BTreeMap<String, KindCount>,
}

/// The kinds that occurred, worst first: any unexpected, then severity, then count, then
/// name (for a stable order). Shared by this summary and `ct-rollout report`.
pub fn kinds_worst_first(by_kind: &BTreeMap<String, KindCount>) -> Vec<(&str, &KindCount)> {
    let mut kinds: Vec<(&str, &KindCount)> = by_kind
        .iter()
        .filter(|(_, c)| c.expected + c.unexpected > 0)
        .map(|(k, c)| (k.as_str(), c))
        .collect();
    kinds.sort_by(|a, b| {
        (b.1.unexpected > 0)
            .cmp(&(a.1.unexpected > 0))
            .then(b.1.severity.cmp(&a.1.severity))
            .then((b.1.expected + b.1.unexpected).cmp(&(a.1.expected + a.1.unexpected)))
            .then(a.0.cmp(b.0))
    });
    kinds
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterChanges {
    /// The legacy engine traced, the globals engine skips.
    pub trace_to_skip: u64,
    /// The legacy engine skipped, the globals engine traces.
    pub skip_to_trace: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub sampled_out: u64,
    pub budget_exhausted: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplingState {
    /// The `--shadow-sample` rate.
    pub rate: f64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactState {
    /// The shadow directory.
    pub dir: String,
    /// Lines in `divergences.ndjson`.
    pub divergence_lines: u64,
    /// Failed artifact writes (each also counted in `ct_shadow_artifact_write_errors_total`).
    pub write_errors: u64,
    /// The first write error, for humans.
    pub first_write_error: Option<String>,
}

/// The content of `summary.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub schema: String,
    pub run: RunSection,
    pub comparisons: u64,
    pub skipped: Skipped,
    pub divergences: DivergenceTotals,
    /// Engine → reason → count (zeros left out).
    pub fallbacks: BTreeMap<Engine, BTreeMap<String, u64>>,
    pub filter_decision_changes: FilterChanges,
    pub engine_errors: BTreeMap<Engine, u64>,
    /// Resolution times per engine (all resolutions counted in the registry).
    pub timings: BTreeMap<Engine, EngineTiming>,
    pub sampling: SamplingState,
    pub budget: BudgetState,
    pub artifacts: ArtifactState,
    /// What kind of program this was (absent in summaries of older recorders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<ProgramSection>,
}

/// What the session adds to the metrics to build a summary.
pub(crate) struct SummaryInputs<'a> {
    pub metrics: &'a Metrics,
    pub meta: &'a RunMeta,
    pub duration_seconds: f64,
    /// `[kind][0 = expected, 1 = unexpected]`.
    pub split: Vec<[u64; 2]>,
    pub sampling: SamplingState,
    pub budget: BudgetState,
    pub artifacts: ArtifactState,
    /// Distinct threads seen in comparisons.
    pub threads: u64,
}

pub(crate) fn build(i: SummaryInputs<'_>) -> Summary {
    let m = i.metrics;
    let mut by_kind = BTreeMap::new();
    let (mut expected, mut unexpected) = (0, 0);
    for k in DivergenceKind::ALL {
        let [e, u] = i.split[k as usize];
        expected += e;
        unexpected += u;
        by_kind.insert(
            k.as_str().to_owned(),
            KindCount {
                severity: k.severity(),
                expected: e,
                unexpected: u,
            },
        );
    }
    let fallbacks = Engine::ALL
        .iter()
        .map(|e| {
            let reasons = m
                .fallbacks(*e)
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(r, n)| (r.to_owned(), n))
                .collect();
            (*e, reasons)
        })
        .collect();
    Summary {
        schema: SUMMARY_SCHEMA.to_owned(),
        run: RunSection {
            meta: i.meta.clone(),
            recorder_version: m.info().version.clone(),
            primary: m.info().primary,
            shadow: m.info().shadow,
            duration_seconds: i.duration_seconds,
        },
        comparisons: m.comparisons(),
        skipped: Skipped {
            sampled_out: m.skipped(SkipReason::SampledOut),
            budget_exhausted: m.skipped(SkipReason::BudgetExhausted),
        },
        divergences: DivergenceTotals {
            total: expected + unexpected,
            expected,
            unexpected,
            by_kind,
        },
        fallbacks,
        filter_decision_changes: FilterChanges {
            trace_to_skip: m.filter_changes(Exec::Trace, Exec::Skip),
            skip_to_trace: m.filter_changes(Exec::Skip, Exec::Trace),
        },
        engine_errors: Engine::ALL
            .iter()
            .map(|e| (*e, m.engine_errors(*e)))
            .collect(),
        timings: Engine::ALL.iter().map(|e| (*e, m.timing(*e))).collect(),
        sampling: i.sampling,
        budget: i.budget,
        artifacts: i.artifacts,
        program: Some(ProgramSection {
            entry: i.meta.entry.clone(),
            threads: i.threads,
            runpy: i
                .meta
                .entry
                .as_ref()
                .is_some_and(|e| e.kind == EntryKind::Module)
                || i.split[DivergenceKind::RunpyAlias as usize]
                    .iter()
                    .sum::<u64>()
                    > 0,
        }),
    }
}

/// Kinds listed one per line before the rest are folded into one line.
const KIND_ROWS: usize = 8;

/// The rule above and below [`render_summary`]'s text, so the recorder's lines stand apart
/// from the program's own output on a shared terminal.
pub const SUMMARY_RULE: &str =
    "──────────────────────────────────────────────────────────────────────── ct-record ──";

/// `n` and its noun, singular for one: `1 line`, `2 lines`.
fn n_of(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The trace a run wrote, for the one-screen summary: the events file as the recorder
/// opened it and the number of events in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceWritten<'a> {
    pub events_file: &'a str,
    pub events: u64,
}

/// A one-screen (at most 25 lines) human summary for stderr, between two [`SUMMARY_RULE`]s
/// and after a blank line.
pub fn render_summary(s: &Summary) -> String {
    render_summary_with_trace(s, None)
}

/// [`render_summary`], plus a `trace:` line naming the events file the run wrote (the
/// recorder knows it; `summary.json` does not carry it).
pub fn render_summary_with_trace(s: &Summary, trace: Option<TraceWritten<'_>>) -> String {
    let mut out: Vec<String> = vec![String::new(), SUMMARY_RULE.to_owned()];
    let r = &s.run;
    out.push(format!(
        "ct-record shadow summary: run {} · primary {} · shadow {} · {}",
        if r.meta.run_id.is_empty() {
            "-"
        } else {
            &r.meta.run_id
        },
        r.primary.as_str(),
        r.shadow.map_or("none", Engine::as_str),
        human_seconds(r.duration_seconds)
    ));
    if r.meta.recording == Recording::EvidenceOnly {
        out.push("evidence-only: no trace was written (--evidence-only)".to_owned());
    }
    let budget = match (&s.budget.fraction, s.budget.exhausted_at_seconds) {
        (None, _) => "no budget".to_owned(),
        (Some(f), Some(at)) => format!(
            "budget {} EXHAUSTED at {}: comparing stopped",
            percent(*f),
            human_seconds(at)
        ),
        (Some(f), None) => format!(
            "budget {} ({} used)",
            percent(*f),
            human_seconds(s.budget.shadow_seconds)
        ),
    };
    out.push(format!(
        "compared {} · sample {} ({} skipped) · {} ({} skipped)",
        n_of(s.comparisons, "code object", "code objects"),
        percent(s.sampling.rate),
        s.skipped.sampled_out,
        budget,
        s.skipped.budget_exhausted
    ));
    if let Some(cut) = &r.meta.trace_cut {
        out.push(format!(
            "trace cut at --max-trace-size ({} bytes) after {}: comparing went on",
            cut.limit_bytes,
            n_of(cut.events, "event", "events")
        ));
    }
    let d = &s.divergences;
    out.push(format!(
        "divergences {} · expected by ADR 0016 {} · UNEXPECTED {}",
        d.total, d.expected, d.unexpected
    ));
    let kinds = kinds_worst_first(&d.by_kind);
    if !kinds.is_empty() {
        out.push(format!(
            "  {:<24} {:>8}  {:<6}  {:>10}",
            "kind", "count", "sev", "unexpected"
        ));
    }
    for (name, c) in kinds.iter().take(KIND_ROWS) {
        out.push(format!(
            "  {:<24} {:>8}  {:<6}  {:>10}",
            name,
            c.expected + c.unexpected,
            c.severity.as_str(),
            c.unexpected
        ));
    }
    if kinds.len() > KIND_ROWS {
        let rest: u64 = kinds[KIND_ROWS..]
            .iter()
            .map(|(_, c)| c.expected + c.unexpected)
            .sum();
        let hidden = kinds.len() - KIND_ROWS;
        out.push(format!(
            "  … {hidden} more {}, {} (see summary.json)",
            if hidden == 1 { "kind" } else { "kinds" },
            n_of(rest, "divergence", "divergences")
        ));
    }
    let f = &s.filter_decision_changes;
    out.push(format!(
        "filter decision changes (legacy → globals): trace→skip {} · skip→trace {}",
        f.trace_to_skip, f.skip_to_trace
    ));
    for e in Engine::ALL {
        let t = s.timings.get(&e);
        let reasons = s.fallbacks.get(&e).cloned().unwrap_or_default();
        let total: u64 = reasons.values().sum();
        let mut top: Vec<_> = reasons.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let top: Vec<String> = top
            .iter()
            .take(3)
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        out.push(format!(
            "{:<7} {} names · mean {} · p50 ~{} · p99 ~{} · errors {} · fallbacks {}{}",
            e.as_str(),
            t.map_or(0, |t| t.count),
            t.and_then(|t| t.mean_seconds)
                .map_or("-".into(), human_seconds),
            t.and_then(|t| t.p50_seconds)
                .map_or("-".into(), human_seconds),
            t.and_then(|t| t.p99_seconds)
                .map_or("-".into(), human_seconds),
            s.engine_errors.get(&e).copied().unwrap_or(0),
            total,
            if top.is_empty() {
                String::new()
            } else {
                format!(" ({})", top.join(", "))
            }
        ));
    }
    if let Some(t) = trace {
        out.push(format!(
            "trace:   {} ({})",
            t.events_file,
            n_of(t.events, "event", "events")
        ));
    }
    let a = &s.artifacts;
    out.push(format!(
        "details: {}/divergences.ndjson ({}), summary.json, metrics.prom",
        a.dir,
        n_of(a.divergence_lines, "line", "lines")
    ));
    if a.write_errors > 0 {
        out.push(format!(
            "WARNING: {} artifact writes failed; first: {}",
            a.write_errors,
            a.first_write_error.as_deref().unwrap_or("?")
        ));
    }
    out.push(SUMMARY_RULE.to_owned());
    let mut text = out.join("\n");
    text.push('\n');
    text
}

fn percent(f: f64) -> String {
    let p = f * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{}%", p.round())
    } else {
        format!("{p:.2}%")
    }
}

/// `850 ns`, `1.2 µs`, `3.4 ms`, `12.3 s`.
pub fn human_seconds(s: f64) -> String {
    if s < 1e-6 {
        format!("{:.0} ns", s * 1e9)
    } else if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.1} s")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn recording_kind_defaults_to_trace_for_older_summaries() {
        let old: RunMeta = serde_json::from_str(
            r#"{"run_id": "1-2", "command": [], "started_unix_seconds": 1.0,
                "python_version": null, "exit_code": 0}"#,
        )
        .unwrap();
        assert_eq!(old.recording, Recording::Trace);
        let meta = RunMeta {
            recording: Recording::EvidenceOnly,
            ..RunMeta::default()
        };
        let json = serde_json::to_value(&meta).unwrap();
        assert_eq!(json["recording"], "evidence-only");
        let back: RunMeta = serde_json::from_value(json).unwrap();
        assert_eq!(back.recording, Recording::EvidenceOnly);
    }

    #[test]
    fn entry_names_the_test_runner_by_module_or_script() {
        assert_eq!(
            Entry::new(true, "pytest").test_runner.as_deref(),
            Some("pytest")
        );
        assert_eq!(
            Entry::new(true, "unittest.__main__").test_runner.as_deref(),
            Some("unittest")
        );
        assert_eq!(
            Entry::new(false, "/venv/bin/py.test")
                .test_runner
                .as_deref(),
            Some("py.test")
        );
        assert_eq!(
            Entry::new(false, "C:\\venv\\Scripts\\pytest-script.py")
                .test_runner
                .as_deref(),
            Some("pytest")
        );
        let app = Entry::new(false, "tools/pytest_helpers.py");
        assert_eq!((app.kind, app.test_runner), (EntryKind::Script, None));
        assert_eq!(Entry::new(true, "pkg.cli").kind, EntryKind::Module);
        assert_eq!(Entry::api().target, None);
    }

    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_seconds(8.5e-7), "850 ns");
        assert_eq!(human_seconds(1.25e-6), "1.2 µs");
        assert_eq!(human_seconds(0.0034), "3.4 ms");
        assert_eq!(human_seconds(12.34), "12.3 s");
        assert_eq!(percent(0.05), "5%");
        assert_eq!(percent(0.125), "12.50%");
    }
}
