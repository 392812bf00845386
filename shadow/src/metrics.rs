//! The Prometheus registry of a recording (`docs/metrics.md` lists every series).
//!
//! Every label value comes from a closed Rust enum (or the fixed list
//! [`crate::fallback::ALL`]); module and file names never become labels. All label children
//! are resolved once, in [`Metrics::new`], and kept as handles, so counting on the hot path
//! is an index and an atomic add — no hashing, no locking, no allocation.

use prometheus::core::Metric;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use serde::{Deserialize, Serialize};

use crate::model::{fallback, Engine, EngineResult, Exec};
use crate::taxonomy::DivergenceKind;

/// Buckets of `ct_module_name_resolution_seconds`: 1 µs to 100 ms. A legacy lookup that
/// scans a large `sys.modules` lands in the 100 µs – 1 ms range; the globals engine in the
/// first buckets.
pub const RESOLUTION_BUCKETS: [f64; 15] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2,
    0.1,
];

/// Label `outcome` of `ct_module_name_resolutions_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A name from the engine's main path.
    Resolved,
    /// The engine reported a fallback (with or without a name).
    Fallback,
    /// No name, no fallback reported, no error.
    Unresolved,
    /// The engine failed.
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Resolved,
        Outcome::Fallback,
        Outcome::Unresolved,
        Outcome::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Resolved => "resolved",
            Outcome::Fallback => "fallback",
            Outcome::Unresolved => "unresolved",
            Outcome::Error => "error",
        }
    }

    /// How a result is counted: error, else fallback, else resolved or unresolved.
    pub fn of(r: &EngineResult) -> Outcome {
        if r.error.is_some() {
            Outcome::Error
        } else if r.fallback.is_some() {
            Outcome::Fallback
        } else if r.name.is_some() {
            Outcome::Resolved
        } else {
            Outcome::Unresolved
        }
    }
}

/// Label `event` of `ct_trace_events_total`: the events of the C-level trace and profile
/// hooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceEvent {
    Call,
    Line,
    Return,
    Exception,
    Opcode,
    CCall,
    CReturn,
    CException,
}

impl TraceEvent {
    pub const ALL: [TraceEvent; 8] = [
        TraceEvent::Call,
        TraceEvent::Line,
        TraceEvent::Return,
        TraceEvent::Exception,
        TraceEvent::Opcode,
        TraceEvent::CCall,
        TraceEvent::CReturn,
        TraceEvent::CException,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TraceEvent::Call => "call",
            TraceEvent::Line => "line",
            TraceEvent::Return => "return",
            TraceEvent::Exception => "exception",
            TraceEvent::Opcode => "opcode",
            TraceEvent::CCall => "c_call",
            TraceEvent::CReturn => "c_return",
            TraceEvent::CException => "c_exception",
        }
    }
}

/// Label `reason` of `ct_shadow_skipped_total`: why a code object got no comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// Its file is outside the `--shadow-sample` fraction.
    SampledOut,
    /// The `--shadow-budget` ran out.
    BudgetExhausted,
}

impl SkipReason {
    pub const ALL: [SkipReason; 2] = [SkipReason::SampledOut, SkipReason::BudgetExhausted];

    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::SampledOut => "sampled_out",
            SkipReason::BudgetExhausted => "budget_exhausted",
        }
    }
}

/// The labels of `ct_recorder_info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecorderInfo {
    /// The recorder's version, e.g. `env!("CARGO_PKG_VERSION")`.
    pub version: String,
    pub primary: Engine,
    /// `None` without `--shadow-compare` (label value `none`).
    pub shadow: Option<Engine>,
}

/// Which fallback reasons each engine can report; the rest count as `other`.
fn engine_reasons(engine: Engine) -> &'static [&'static str] {
    use fallback::*;
    match engine {
        Engine::Globals => &[
            GLOBALS_MISSING,
            GLOBALS_NOT_STR,
            GLOBALS_BLANK,
            NO_GLOBALS,
            PROJECT_RELATIVE,
            INIT_WALK,
            OTHER,
        ],
        Engine::Legacy => &[
            PATH_CANDIDATE,
            HEURISTIC_ROOT,
            RELATIVE_FILENAME,
            HOOK_ATTRIBUTE,
            OTHER,
        ],
    }
}

/// Per-engine timing figures derived from the resolution histogram.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineTiming {
    pub count: u64,
    pub total_seconds: f64,
    pub mean_seconds: Option<f64>,
    /// Estimated from the histogram buckets (linear interpolation, like PromQL's
    /// `histogram_quantile`).
    pub p50_seconds: Option<f64>,
    pub p99_seconds: Option<f64>,
}

/// The metrics of one recording, with every label child pre-resolved.
pub struct Metrics {
    registry: Registry,
    info: RecorderInfo,
    resolutions: [[IntCounter; 4]; 2],
    /// `[engine][fallback::index(reason)]`; `None` where the engine never reports the reason.
    fallbacks: [Vec<Option<IntCounter>>; 2],
    comparisons: IntCounter,
    divergences: Vec<IntCounter>,
    /// `[from][to]` by [`Exec::index`]; only the two real changes exist.
    filter_changes: [[Option<IntCounter>; 2]; 2],
    engine_errors: [IntCounter; 2],
    seconds: [Histogram; 2],
    trace_events: Vec<IntCounter>,
    skipped: [IntCounter; 2],
    budget_exhausted: IntGauge,
    artifact_errors: IntCounter,
    /// `[kind]`: the divergences of that kind ADR 0016 does not predict.
    unexpected: Vec<IntCounter>,
    /// The run's identity, without a label: `ct_recorder_run_start_time_seconds` and
    /// `ct_recorder_run_pid` together are the run id `"{start}-{pid}"`.
    run_start: IntGauge,
    run_pid: IntGauge,
    run_finished: IntGauge,
    sample_rate: Gauge,
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric definition");
    registry
        .register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let v = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry
        .register(Box::new(v.clone()))
        .expect("metric registered once");
    v
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric definition");
    registry
        .register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

impl Metrics {
    /// A fresh registry with every series defined (at zero).
    pub fn new(info: &RecorderInfo) -> Metrics {
        let registry = Registry::new();
        let r = &registry;

        let resolutions = counter_vec(
            r,
            "ct_module_name_resolutions_total",
            "Module-name resolutions by engine and outcome.",
            &["engine", "outcome"],
        );
        let fallbacks = counter_vec(
            r,
            "ct_module_name_fallbacks_total",
            "Resolutions where an engine left its main path, by reason.",
            &["engine", "reason"],
        );
        let comparisons = counter(
            r,
            "ct_shadow_comparisons_total",
            "Code objects named by both engines and compared.",
        );
        let divergences = counter_vec(
            r,
            "ct_shadow_divergences_total",
            "Compared code objects on which the engines diverged, by kind and severity.",
            &["kind", "severity"],
        );
        let filter_changes = counter_vec(
            r,
            "ct_shadow_filter_decision_changes_total",
            "Filter decisions that differ, from the legacy engine's to the globals engine's.",
            &["from", "to"],
        );
        let engine_errors = counter_vec(
            r,
            "ct_shadow_engine_errors_total",
            "Errors reported by a naming engine.",
            &["engine"],
        );
        let seconds = HistogramVec::new(
            HistogramOpts::new(
                "ct_module_name_resolution_seconds",
                "Time one engine spent naming (and filtering) one code object.",
            )
            .buckets(RESOLUTION_BUCKETS.to_vec()),
            &["engine"],
        )
        .expect("valid metric definition");
        r.register(Box::new(seconds.clone()))
            .expect("metric registered once");
        let trace_events = counter_vec(
            r,
            "ct_trace_events_total",
            "Trace hook events seen, by event.",
            &["event"],
        );
        let info_gauge = IntGaugeVec::new(
            Opts::new(
                "ct_recorder_info",
                "Recorder build and engine configuration (always 1).",
            ),
            &["version", "primary", "shadow"],
        )
        .expect("valid metric definition");
        r.register(Box::new(info_gauge.clone()))
            .expect("metric registered once");
        let skipped = counter_vec(
            r,
            "ct_shadow_skipped_total",
            "Code objects not compared, by reason.",
            &["reason"],
        );
        let budget_exhausted = IntGauge::new(
            "ct_shadow_budget_exhausted",
            "1 once the shadow time budget has run out and comparing stopped, else 0.",
        )
        .expect("valid metric definition");
        r.register(Box::new(budget_exhausted.clone()))
            .expect("metric registered once");
        let artifact_errors = counter(
            r,
            "ct_shadow_artifact_write_errors_total",
            "Failed writes of shadow artifacts (divergence log lines, roots, summary).",
        );

        let unexpected = counter_vec(
            r,
            "ct_shadow_unexpected_divergences_total",
            "Divergences ADR 0016 does not predict, by kind (a subset of ct_shadow_divergences_total).",
            &["kind"],
        );
        let run_start = gauge(
            r,
            "ct_recorder_run_start_time_seconds",
            "Start of the run, whole seconds since the Unix epoch (the first part of the run id).",
        );
        let run_pid = gauge(
            r,
            "ct_recorder_run_pid",
            "Process id of the recorder (the second part of the run id).",
        );
        let run_finished = gauge(
            r,
            "ct_recorder_run_finished",
            "1 once the program has ended and every counter holds its final value, else 0.",
        );
        let sample_rate = Gauge::new(
            "ct_shadow_sample_rate",
            "The --shadow-sample fraction of files compared (0 without shadow mode).",
        )
        .expect("valid metric definition");
        r.register(Box::new(sample_rate.clone()))
            .expect("metric registered once");

        info_gauge
            .with_label_values(&[
                &info.version,
                info.primary.as_str(),
                info.shadow.map_or("none", Engine::as_str),
            ])
            .set(1);

        let per_engine = |f: &dyn Fn(Engine) -> IntCounter| Engine::ALL.map(f);
        let filter_change = |from: Exec, to: Exec| {
            (from != to).then(|| filter_changes.with_label_values(&[from.as_str(), to.as_str()]))
        };
        Metrics {
            resolutions: Engine::ALL.map(|e| {
                Outcome::ALL.map(|o| resolutions.with_label_values(&[e.as_str(), o.as_str()]))
            }),
            fallbacks: Engine::ALL.map(|e| {
                let known = engine_reasons(e);
                fallback::ALL
                    .iter()
                    .map(|reason| {
                        known
                            .contains(reason)
                            .then(|| fallbacks.with_label_values(&[e.as_str(), reason]))
                    })
                    .collect()
            }),
            comparisons,
            divergences: DivergenceKind::ALL
                .iter()
                .map(|k| divergences.with_label_values(&[k.as_str(), k.severity().as_str()]))
                .collect(),
            filter_changes: Exec::ALL.map(|from| Exec::ALL.map(|to| filter_change(from, to))),
            engine_errors: per_engine(&|e| engine_errors.with_label_values(&[e.as_str()])),
            seconds: Engine::ALL.map(|e| seconds.with_label_values(&[e.as_str()])),
            trace_events: TraceEvent::ALL
                .iter()
                .map(|e| trace_events.with_label_values(&[e.as_str()]))
                .collect(),
            skipped: SkipReason::ALL.map(|s| skipped.with_label_values(&[s.as_str()])),
            budget_exhausted,
            artifact_errors,
            unexpected: DivergenceKind::ALL
                .iter()
                .map(|k| unexpected.with_label_values(&[k.as_str()]))
                .collect(),
            run_start,
            run_pid,
            run_finished,
            sample_rate,
            registry,
            info: info.clone(),
        }
    }

    /// What `ct_recorder_info` says.
    pub fn info(&self) -> &RecorderInfo {
        &self.info
    }

    /// The registry, for the `/metrics` server and the Pushgateway.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Counts one engine's answer for one code object: resolutions, fallbacks, errors and
    /// time. Call it for the primary on every first sight of a code object; the shadow
    /// engine's answers are counted by [`crate::ShadowSession::observe`].
    pub fn observe_resolution(&self, r: &EngineResult) {
        let e = r.engine.index();
        self.resolutions[e][Outcome::of(r) as usize].inc();
        if let Some(reason) = r.fallback {
            self.fallback_counter(r.engine, reason).inc();
        }
        if r.error.is_some() {
            self.engine_errors[e].inc();
        }
        self.seconds[e].observe(r.elapsed_ns as f64 / 1e9);
    }

    fn fallback_counter(&self, engine: Engine, reason: &str) -> &IntCounter {
        let row = &self.fallbacks[engine.index()];
        match &row[fallback::index(reason)] {
            Some(c) => c,
            None => row[fallback::ALL.len() - 1]
                .as_ref()
                .expect("`other` exists for every engine"),
        }
    }

    /// Counts one comparison.
    pub fn inc_comparisons(&self) {
        self.comparisons.inc();
    }

    /// Counts one divergence (severity follows the kind).
    pub fn inc_divergence(&self, kind: DivergenceKind) {
        self.divergences[kind.index()].inc();
    }

    /// Counts a filter decision change from the legacy engine's `from` to the globals
    /// engine's `to`; equal decisions are not a change and are ignored.
    pub fn inc_filter_change(&self, from: Exec, to: Exec) {
        if let Some(c) = &self.filter_changes[from.index()][to.index()] {
            c.inc();
        }
    }

    /// Counts a divergence ADR 0016 does not predict (also counted by
    /// [`Metrics::inc_divergence`]).
    pub fn inc_unexpected(&self, kind: DivergenceKind) {
        self.unexpected[kind.index()].inc();
    }

    /// Sets the run's identity: its run id is `"{start_unix_seconds}-{pid}"`.
    pub fn set_run_identity(&self, start_unix_seconds: u64, pid: u32) {
        self.run_start
            .set(i64::try_from(start_unix_seconds).unwrap_or(i64::MAX));
        self.run_pid.set(i64::from(pid));
    }

    /// Marks every counter final (the program has ended): a scrape that sees this has the
    /// run's totals.
    pub fn set_finished(&self) {
        self.run_finished.set(1);
    }

    /// Records the `--shadow-sample` rate.
    pub fn set_sample_rate(&self, rate: f64) {
        self.sample_rate.set(rate);
    }

    /// Counts `n` trace events (the recorder may batch).
    pub fn add_trace_events(&self, event: TraceEvent, n: u64) {
        self.trace_events[event as usize].inc_by(n);
    }

    pub fn inc_skipped(&self, reason: SkipReason) {
        self.skipped[reason as usize].inc();
    }

    pub fn set_budget_exhausted(&self, exhausted: bool) {
        self.budget_exhausted.set(i64::from(exhausted));
    }

    pub fn inc_artifact_errors(&self) {
        self.artifact_errors.inc();
    }

    // --- reading back, for the summary -------------------------------------------------

    pub fn comparisons(&self) -> u64 {
        self.comparisons.get()
    }

    pub fn divergences(&self, kind: DivergenceKind) -> u64 {
        self.divergences[kind.index()].get()
    }

    pub fn resolutions(&self, engine: Engine, outcome: Outcome) -> u64 {
        self.resolutions[engine.index()][outcome as usize].get()
    }

    /// Fallback counts of `engine`, by reason label, zeros included.
    pub fn fallbacks(&self, engine: Engine) -> Vec<(&'static str, u64)> {
        fallback::ALL
            .iter()
            .zip(&self.fallbacks[engine.index()])
            .filter_map(|(reason, c)| c.as_ref().map(|c| (*reason, c.get())))
            .collect()
    }

    pub fn filter_changes(&self, from: Exec, to: Exec) -> u64 {
        self.filter_changes[from.index()][to.index()]
            .as_ref()
            .map_or(0, IntCounter::get)
    }

    pub fn engine_errors(&self, engine: Engine) -> u64 {
        self.engine_errors[engine.index()].get()
    }

    pub fn skipped(&self, reason: SkipReason) -> u64 {
        self.skipped[reason as usize].get()
    }

    pub fn trace_events(&self, event: TraceEvent) -> u64 {
        self.trace_events[event as usize].get()
    }

    pub fn artifact_errors(&self) -> u64 {
        self.artifact_errors.get()
    }

    /// Count, total, mean and estimated p50/p99 of an engine's resolution times.
    pub fn timing(&self, engine: Engine) -> EngineTiming {
        let m = self.seconds[engine.index()].metric();
        let h = m.get_histogram();
        let count = h.get_sample_count();
        let total = h.get_sample_sum();
        let buckets: Vec<(f64, u64)> = h
            .get_bucket()
            .iter()
            .map(|b| (b.get_upper_bound(), b.get_cumulative_count()))
            .collect();
        EngineTiming {
            count,
            total_seconds: total,
            mean_seconds: (count > 0).then(|| total / count as f64),
            p50_seconds: bucket_quantile(0.5, &buckets, count),
            p99_seconds: bucket_quantile(0.99, &buckets, count),
        }
    }

    /// The registry in the Prometheus text format (0.0.4).
    pub fn render(&self) -> String {
        render_registry(&self.registry)
    }
}

/// Renders any registry in the Prometheus text format.
pub fn render_registry(registry: &Registry) -> String {
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut buf)
        .expect("text encoding into memory cannot fail for a consistent registry");
    String::from_utf8(buf).expect("the text format is UTF-8")
}

/// The `Content-Type` of [`render_registry`]'s output.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4";

/// Quantile `q` of a cumulative histogram (finite upper bounds, ascending; `count` includes
/// the `+Inf` bucket), interpolating linearly inside the bucket. Falls back to the highest
/// finite bound when the quantile lies in `+Inf`.
pub fn bucket_quantile(q: f64, buckets: &[(f64, u64)], count: u64) -> Option<f64> {
    if count == 0 || buckets.is_empty() {
        return None;
    }
    let rank = q * count as f64;
    let mut lower = 0.0;
    let mut below = 0u64;
    for &(upper, cumulative) in buckets {
        if cumulative as f64 >= rank && cumulative > below {
            let inside = (cumulative - below) as f64;
            return Some(lower + (upper - lower) * (rank - below as f64) / inside);
        }
        lower = upper;
        below = cumulative;
    }
    buckets.last().map(|b| b.0)
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("comparisons", &self.comparisons())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> RecorderInfo {
        RecorderInfo {
            version: "0.1.0".into(),
            primary: Engine::Globals,
            shadow: Some(Engine::Legacy),
        }
    }

    #[test]
    fn resolution_is_counted_by_outcome_reason_error_and_time() {
        let m = Metrics::new(&info());
        let mut r = EngineResult::named(Engine::Legacy, "pkg.mod");
        r.elapsed_ns = 3_000;
        m.observe_resolution(&r);
        r.fallback = Some(fallback::PATH_CANDIDATE);
        m.observe_resolution(&r);
        r.fallback = Some("something new");
        m.observe_resolution(&r);
        r.fallback = Some(fallback::GLOBALS_MISSING); // not a legacy reason
        m.observe_resolution(&r);
        r.fallback = None;
        r.error = Some("boom".into());
        m.observe_resolution(&r);
        m.observe_resolution(&EngineResult::unnamed(Engine::Globals));

        assert_eq!(m.resolutions(Engine::Legacy, Outcome::Resolved), 1);
        assert_eq!(m.resolutions(Engine::Legacy, Outcome::Fallback), 3);
        assert_eq!(m.resolutions(Engine::Legacy, Outcome::Error), 1);
        assert_eq!(m.resolutions(Engine::Globals, Outcome::Unresolved), 1);
        let fb: std::collections::HashMap<_, _> = m.fallbacks(Engine::Legacy).into_iter().collect();
        assert_eq!(fb["path_candidate"], 1);
        assert_eq!(fb["other"], 2);
        assert!(!fb.contains_key("globals_missing"));
        assert_eq!(m.engine_errors(Engine::Legacy), 1);
        let t = m.timing(Engine::Legacy);
        assert_eq!(t.count, 5);
        assert!((t.total_seconds - 15e-6).abs() < 1e-12);
        // All five samples sit in the (2.5 µs, 5 µs] bucket.
        let p50 = t.p50_seconds.unwrap();
        assert!(p50 > 2.5e-6 && p50 <= 5e-6, "{p50}");
    }

    #[test]
    fn labels_never_carry_names() {
        let m = Metrics::new(&info());
        let mut r = EngineResult::named(Engine::Globals, "secret_project.billing");
        r.fallback = Some("reason_secret_project");
        m.observe_resolution(&r);
        let text = m.render();
        assert!(!text.contains("secret_project"), "{text}");
    }

    #[test]
    fn filter_changes_only_count_real_changes() {
        let m = Metrics::new(&info());
        m.inc_filter_change(Exec::Trace, Exec::Skip);
        m.inc_filter_change(Exec::Trace, Exec::Trace);
        assert_eq!(m.filter_changes(Exec::Trace, Exec::Skip), 1);
        assert_eq!(m.filter_changes(Exec::Trace, Exec::Trace), 0);
        let text = m.render();
        assert!(
            text.contains(r#"ct_shadow_filter_decision_changes_total{from="trace",to="skip"} 1"#)
        );
        assert!(!text.contains(r#"from="trace",to="trace""#));
    }

    #[test]
    fn render_has_info_and_every_divergence_kind() {
        let m = Metrics::new(&RecorderInfo {
            version: "9.9.9".into(),
            primary: Engine::Legacy,
            shadow: None,
        });
        m.inc_divergence(DivergenceKind::FilterDecisionChanged);
        let text = m.render();
        assert!(
            text.contains(r#"ct_recorder_info{primary="legacy",shadow="none",version="9.9.9"} 1"#)
        );
        assert!(text.contains(
            r#"ct_shadow_divergences_total{kind="filter_decision_changed",severity="high"} 1"#
        ));
        for k in DivergenceKind::ALL {
            assert!(text.contains(&format!("kind=\"{}\"", k.as_str())), "{k}");
        }
    }

    #[test]
    fn every_series_and_label_value_is_documented() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md"))
                .expect("docs/metrics.md");
        let m = Metrics::new(&info());
        let families = m.registry().gather();
        assert_eq!(families.len(), 17);
        for mf in &families {
            let name = mf.get_name();
            let heading = format!("### `{name}");
            let at = doc
                .find(&heading)
                .unwrap_or_else(|| panic!("docs/metrics.md lacks a section for {name}"));
            let section = &doc[at..];
            let end = section[1..].find("\n### ").map_or(section.len(), |e| e + 1);
            let section = &section[..end];
            for metric in mf.get_metric() {
                for pair in metric.get_label() {
                    if pair.get_name() == "version" {
                        continue;
                    }
                    let value = format!("`{}`", pair.get_value());
                    assert!(
                        section.contains(&value),
                        "{name}: label {}={value} undocumented",
                        pair.get_name()
                    );
                }
            }
        }
    }

    #[test]
    fn quantiles_interpolate_like_promql() {
        let b = [(1.0, 10), (2.0, 20), (4.0, 20)];
        assert_eq!(bucket_quantile(0.5, &b, 20), Some(1.0));
        assert_eq!(bucket_quantile(0.25, &b, 20), Some(0.5));
        assert_eq!(bucket_quantile(0.75, &b, 20), Some(1.5));
        // Beyond the last finite bound: the bound.
        assert_eq!(bucket_quantile(0.99, &b, 40), Some(4.0));
        assert_eq!(bucket_quantile(0.5, &b, 0), None);
    }
}
