//! Evidence from Prometheus: [`PrometheusSource`] reads the recorder's series over a window
//! through the HTTP query API and turns them into one [`RunReport`] per run.
//!
//! ## How runs are told apart and counted (docs/metrics.md, *Run identity*)
//!
//! The run id `"{start}-{pid}"` is exported as two gauges, `ct_recorder_run_start_time_seconds`
//! and `ct_recorder_run_pid`, not as a label. One query (a range selector evaluated as an
//! instant query) returns the raw samples of the recorder's series over the window. Series are
//! grouped by *target*: their labels less `__name__` and the metric's own labels (`kind`,
//! `engine`…), so the series of one scraped process, or of one Pushgateway group, form one
//! target. Within a target the samples of one scrape share a timestamp, and that scrape's two
//! gauges say which run it belongs to; a target that served several runs (a port reused)
//! shows them as successive `(start, pid)` values.
//!
//! Every counter starts at 0 in a new process, so a run's total is the counter's last value in
//! that run: exact, where PromQL's `increase()` extrapolates to the window's edges. Counter
//! resets (a restart) are new runs, not a correction. A run whose last scrape has
//! `ct_recorder_run_finished 1` is complete; one without gets a note. The same run seen twice
//! (scraped and pushed) counts once: the finished copy, else the one with more comparisons.
//!
//! Only counts come from Prometheus. File names, deciding rules and example records exist only
//! in run directories: such runs carry [`LogState::FromMetrics`] and a note saying so.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use ct_shadow::metrics::EngineTiming;
use ct_shadow::sampling::BudgetState;
use ct_shadow::summary::{
    ArtifactState, DivergenceTotals, FilterChanges, KindCount, RunSection, SamplingState, Skipped,
    SUMMARY_SCHEMA,
};
use ct_shadow::{DivergenceKind, Engine, RunMeta, Summary};

use crate::error::ReportError;
use crate::load::{LogState, RunReport};

/// The series read, with the labels that belong to the metric (the rest identify the target).
const SERIES: &[(&str, &[&str])] = &[
    (COMPARISONS, &[]),
    (DIVERGENCES, &["kind", "severity"]),
    (UNEXPECTED, &["kind"]),
    (FILTER_CHANGES, &["from", "to"]),
    (ENGINE_ERRORS, &["engine"]),
    (SKIPPED, &["reason"]),
    (FALLBACKS, &["engine", "reason"]),
    (SECONDS_SUM, &["engine"]),
    (SECONDS_COUNT, &["engine"]),
    (ARTIFACT_ERRORS, &[]),
    (BUDGET_EXHAUSTED, &[]),
    (SAMPLE_RATE, &[]),
    (INFO, &["version", "primary", "shadow"]),
    (RUN_START, &[]),
    (RUN_PID, &[]),
    (RUN_FINISHED, &[]),
];

const COMPARISONS: &str = "ct_shadow_comparisons_total";
const DIVERGENCES: &str = "ct_shadow_divergences_total";
const UNEXPECTED: &str = "ct_shadow_unexpected_divergences_total";
const FILTER_CHANGES: &str = "ct_shadow_filter_decision_changes_total";
const ENGINE_ERRORS: &str = "ct_shadow_engine_errors_total";
const SKIPPED: &str = "ct_shadow_skipped_total";
const FALLBACKS: &str = "ct_module_name_fallbacks_total";
const SECONDS_SUM: &str = "ct_module_name_resolution_seconds_sum";
const SECONDS_COUNT: &str = "ct_module_name_resolution_seconds_count";
const ARTIFACT_ERRORS: &str = "ct_shadow_artifact_write_errors_total";
const BUDGET_EXHAUSTED: &str = "ct_shadow_budget_exhausted";
const SAMPLE_RATE: &str = "ct_shadow_sample_rate";
const INFO: &str = "ct_recorder_info";
const RUN_START: &str = "ct_recorder_run_start_time_seconds";
const RUN_PID: &str = "ct_recorder_run_pid";
const RUN_FINISHED: &str = "ct_recorder_run_finished";

/// Where and what to read: `--prometheus URL [--since DURATION] [--match SELECTOR]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrometheusSource {
    /// The server's base URL (`http://host:9090`, a path prefix allowed).
    pub url: String,
    /// The window, back from now.
    pub since: Duration,
    /// Label matchers that narrow the series, `{job="ct-record",env="ci"}` (braces
    /// optional); `None` reads every recorder series.
    pub matchers: Option<String>,
}

/// The default `--since`.
pub const DEFAULT_SINCE: &str = "7d";

/// A `--since` value: a duration such as `90m`, `36h`, `7d`, `2w` (humantime's syntax).
pub fn parse_since(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("--since {text:?}: {e} (examples: 90m, 36h, 7d)"))?;
    if d.as_secs() == 0 {
        return Err(format!("--since {text:?}: the window must be at least 1s"));
    }
    Ok(d)
}

impl PrometheusSource {
    /// The PromQL selector: every series the report reads, narrowed by the matchers, over
    /// the window.
    pub fn selector(&self) -> Result<String, ReportError> {
        let names: Vec<&str> = SERIES.iter().map(|(n, _)| *n).collect();
        let mut inner = format!("__name__=~\"{}\"", names.join("|"));
        if let Some(m) = &self.matchers {
            let m = m.trim();
            let m = m
                .strip_prefix('{')
                .and_then(|m| m.strip_suffix('}'))
                .unwrap_or(m)
                .trim();
            if m.contains('{') || m.contains('}') {
                return Err(ReportError::Prometheus {
                    url: self.url.clone(),
                    reason: format!(
                        "--match {m:?} is not a list of label matchers like \
                         '{{job=\"ct-record\",env=\"ci\"}}'"
                    ),
                });
            }
            if !m.is_empty() {
                inner.push(',');
                inner.push_str(m);
            }
        }
        Ok(format!("{{{inner}}}[{}s]", self.since.as_secs()))
    }

    /// Reads the window and returns one run per distinct run id, in run id order.
    pub fn load(&self) -> Result<Vec<RunReport>, ReportError> {
        let selector = self.selector()?;
        let body = self.query(&selector)?;
        let series = parse_matrix(&body).map_err(|reason| self.error(reason))?;
        let runs = runs_of(series);
        if runs.is_empty() {
            return Err(self.error(format!(
                "no ct-record runs in the last {}{}: no recorder series with a run identity \
                 (ct_recorder_run_start_time_seconds) in that window; widen --since, check \
                 --match, and check that Prometheus scrapes the recorders (--metrics-addr) \
                 or their Pushgateway (--metrics-push)",
                humantime::format_duration(self.since),
                self.matchers
                    .as_deref()
                    .map(|m| format!(" matching {m}"))
                    .unwrap_or_default()
            )));
        }
        Ok(runs)
    }

    fn error(&self, reason: String) -> ReportError {
        ReportError::Prometheus {
            url: self.url.clone(),
            reason,
        }
    }

    /// `GET /api/v1/query?query=…`; the body of a 2xx or 4xx answer (Prometheus explains
    /// bad queries in a 400 with its JSON error).
    fn query(&self, promql: &str) -> Result<String, ReportError> {
        let base = self.url.trim_end_matches('/');
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(self.error(
                "not an http:// URL (expected something like http://prometheus:9090)".to_owned(),
            ));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let mut answer = agent
            .get(format!("{base}/api/v1/query"))
            .query("query", promql)
            .call()
            .map_err(|e| self.error(format!("cannot reach Prometheus: {e}")))?;
        let status = answer.status().as_u16();
        let body = answer
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .map_err(|e| self.error(format!("cannot read the answer: {e}")))?;
        if !(200..300).contains(&status) && !(400..500).contains(&status) {
            return Err(self.error(format!(
                "HTTP {status} from the query API: {}",
                excerpt(&body)
            )));
        }
        Ok(body)
    }
}

fn excerpt(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 200 {
        format!("{}…", one_line.chars().take(200).collect::<String>())
    } else {
        one_line
    }
}

/// One series of a matrix answer.
struct Series {
    labels: BTreeMap<String, String>,
    /// `(timestamp in ms, value)`, in time order.
    samples: Vec<(i64, f64)>,
}

/// The series of a `matrix` answer, or why the body is not one.
fn parse_matrix(body: &str) -> Result<Vec<Series>, String> {
    let not_prometheus = || {
        format!(
            "the answer is not from Prometheus's query API (expected JSON with \"status\" and \
             \"data\"): {}",
            excerpt(body)
        )
    };
    let doc: serde_json::Value = serde_json::from_str(body).map_err(|_| not_prometheus())?;
    match doc.get("status").and_then(|s| s.as_str()) {
        Some("success") => {}
        Some("error") => {
            return Err(format!(
                "the query failed: {} ({})",
                doc.get("error").and_then(|e| e.as_str()).unwrap_or("?"),
                doc.get("errorType").and_then(|e| e.as_str()).unwrap_or("?")
            ))
        }
        _ => return Err(not_prometheus()),
    }
    let data = doc.get("data").ok_or_else(not_prometheus)?;
    if data.get("resultType").and_then(|t| t.as_str()) != Some("matrix") {
        return Err(not_prometheus());
    }
    let result = data
        .get("result")
        .and_then(|r| r.as_array())
        .ok_or_else(not_prometheus)?;
    let mut out = Vec::with_capacity(result.len());
    for r in result {
        let labels = r
            .get("metric")
            .and_then(|m| m.as_object())
            .ok_or_else(not_prometheus)?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        let mut samples = Vec::new();
        for pair in r
            .get("values")
            .and_then(|v| v.as_array())
            .ok_or_else(not_prometheus)?
        {
            let ts = pair.get(0).and_then(|t| t.as_f64());
            let value = pair
                .get(1)
                .and_then(|v| v.as_str())
                .and_then(|v| v.parse::<f64>().ok());
            match (ts, value) {
                (Some(ts), Some(v)) => samples.push(((ts * 1000.0).round() as i64, v)),
                _ => return Err(not_prometheus()),
            }
        }
        out.push(Series { labels, samples });
    }
    Ok(out)
}

/// A metric and its own labels (`kind`, `engine`…), sorted.
type SeriesKey = (String, Vec<(String, String)>);

/// Per scrape timestamp (ms): the run start and pid the scrape reported.
type Identities = HashMap<i64, (Option<u64>, Option<u64>)>;

/// A series split into its target, its name, its own labels and its samples.
struct TargetSeries {
    target: String,
    name: String,
    own: Vec<(String, String)>,
    samples: Vec<(i64, f64)>,
}

/// One run's last values, keyed by (metric, its own labels).
#[derive(Default)]
struct RunValues {
    target: String,
    first_ms: i64,
    last_ms: i64,
    /// (name, own labels) → (timestamp of the value, value).
    values: HashMap<SeriesKey, (i64, f64)>,
}

impl RunValues {
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let key = (
            name.to_owned(),
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        self.values.get(&key).map_or(0.0, |(_, v)| *v)
    }

    fn count(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let v = self.get(name, labels);
        if v.is_finite() && v > 0.0 {
            v.round() as u64
        } else {
            0
        }
    }

    fn finished(&self) -> bool {
        // The flag at the run's last scrape.
        self.values
            .get(&(RUN_FINISHED.to_owned(), Vec::new()))
            .is_some_and(|(ts, v)| *ts == self.last_ms && *v == 1.0)
    }
}

/// Splits the series into runs (see the module docs).
fn runs_of(series: Vec<Series>) -> Vec<RunReport> {
    let own: HashMap<&str, &[&str]> = SERIES.iter().copied().collect();
    // target → timestamp → (start, pid)
    let mut ids: HashMap<String, Identities> = HashMap::new();
    let mut split: Vec<TargetSeries> = Vec::new();
    for s in series {
        let Some(name) = s.labels.get("__name__").cloned() else {
            continue;
        };
        let own_labels = own.get(name.as_str()).copied().unwrap_or(&[]);
        let mut target = Vec::new();
        let mut mine = Vec::new();
        for (k, v) in &s.labels {
            if k == "__name__" {
                continue;
            }
            if own_labels.contains(&k.as_str()) {
                mine.push((k.clone(), v.clone()));
            } else {
                target.push(format!("{k}={v:?}"));
            }
        }
        let target = target.join(",");
        if name == RUN_START || name == RUN_PID {
            let by_ts = ids.entry(target.clone()).or_default();
            for (ts, v) in &s.samples {
                let slot = by_ts.entry(*ts).or_default();
                let v = (v.is_finite() && *v > 0.0).then_some(*v as u64);
                if name == RUN_START {
                    slot.0 = v;
                } else {
                    slot.1 = v;
                }
            }
        }
        split.push(TargetSeries {
            target,
            name,
            own: mine,
            samples: s.samples,
        });
    }
    // (target, run id) → values
    let mut runs: HashMap<(String, String), RunValues> = HashMap::new();
    for TargetSeries {
        target,
        name,
        own: mine,
        samples,
    } in split
    {
        let Some(by_ts) = ids.get(&target) else {
            continue; // a target without the identity gauges: an older recorder
        };
        for (ts, v) in samples {
            let Some((Some(start), Some(pid))) = by_ts.get(&ts) else {
                continue;
            };
            let id = format!("{start}-{pid}");
            let run = runs
                .entry((target.clone(), id))
                .or_insert_with(|| RunValues {
                    target: target.clone(),
                    first_ms: ts,
                    last_ms: ts,
                    values: HashMap::new(),
                });
            run.first_ms = run.first_ms.min(ts);
            run.last_ms = run.last_ms.max(ts);
            let slot = run
                .values
                .entry((name.clone(), mine.clone()))
                .or_insert((ts, v));
            if ts >= slot.0 {
                *slot = (ts, v);
            }
        }
    }
    // One run seen through several targets (scraped and pushed): the finished copy, else the
    // one with more comparisons.
    let mut best: BTreeMap<String, RunValues> = BTreeMap::new();
    for ((_, id), run) in runs {
        let better = match best.get(&id) {
            None => true,
            Some(b) => {
                (run.finished(), run.count(COMPARISONS, &[]))
                    > (b.finished(), b.count(COMPARISONS, &[]))
            }
        };
        if better {
            best.insert(id, run);
        }
    }
    best.into_iter()
        .map(|(id, run)| run_report(&id, &run))
        .collect()
}

fn engine_of(label: &str) -> Option<Engine> {
    Engine::ALL.into_iter().find(|e| e.as_str() == label)
}

fn run_report(id: &str, run: &RunValues) -> RunReport {
    let start = id
        .split('-')
        .next()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(0.0);
    // ct_recorder_info's labels at the run's last scrape.
    let info = run
        .values
        .iter()
        .filter(|((n, _), _)| n == INFO)
        .max_by_key(|(_, (ts, _))| *ts)
        .map(|((_, labels), _)| labels.clone())
        .unwrap_or_default();
    let info_label = |k: &str| {
        info.iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
    };
    let mut by_kind = BTreeMap::new();
    let (mut expected, mut unexpected) = (0, 0);
    for k in DivergenceKind::ALL {
        let total = run.count(
            DIVERGENCES,
            &[("kind", k.as_str()), ("severity", k.severity().as_str())],
        );
        let u = run.count(UNEXPECTED, &[("kind", k.as_str())]).min(total);
        expected += total - u;
        unexpected += u;
        by_kind.insert(
            k.as_str().to_owned(),
            KindCount {
                severity: k.severity(),
                expected: total - u,
                unexpected: u,
            },
        );
    }
    let mut fallbacks: BTreeMap<Engine, BTreeMap<String, u64>> = BTreeMap::new();
    let mut engine_errors = BTreeMap::new();
    let mut timings = BTreeMap::new();
    for e in Engine::ALL {
        engine_errors.insert(e, run.count(ENGINE_ERRORS, &[("engine", e.as_str())]));
        let count = run.count(SECONDS_COUNT, &[("engine", e.as_str())]);
        let total_seconds = run.get(SECONDS_SUM, &[("engine", e.as_str())]);
        timings.insert(
            e,
            EngineTiming {
                count,
                total_seconds,
                mean_seconds: (count > 0).then(|| total_seconds / count as f64),
                p50_seconds: None,
                p99_seconds: None,
            },
        );
        fallbacks.insert(e, BTreeMap::new());
    }
    for ((name, labels), (_, v)) in &run.values {
        if name != FALLBACKS || *v <= 0.0 {
            continue;
        }
        let get = |k: &str| labels.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if let (Some(e), Some(reason)) = (get("engine").and_then(engine_of), get("reason")) {
            fallbacks
                .entry(e)
                .or_default()
                .insert(reason.to_owned(), v.round() as u64);
        }
    }
    let exhausted = run.get(BUDGET_EXHAUSTED, &[]) == 1.0;
    let summary = Summary {
        schema: SUMMARY_SCHEMA.to_owned(),
        run: RunSection {
            meta: RunMeta {
                run_id: id.to_owned(),
                command: Vec::new(),
                started_unix_seconds: start,
                python_version: None,
                exit_code: None,
                entry: None,
                trace_cut: None,
                filter_chain: Vec::new(),
                // Not in the metrics: a run seen through Prometheus counts as a trace run.
                recording: Default::default(),
            },
            recorder_version: info_label("version").unwrap_or_default(),
            primary: info_label("primary")
                .as_deref()
                .and_then(engine_of)
                .unwrap_or(Engine::Legacy),
            shadow: info_label("shadow").as_deref().and_then(engine_of),
            // As Prometheus saw it: from the start to the last scrape.
            duration_seconds: (run.last_ms as f64 / 1000.0 - start).max(0.0),
        },
        comparisons: run.count(COMPARISONS, &[]),
        skipped: Skipped {
            sampled_out: run.count(SKIPPED, &[("reason", "sampled_out")]),
            budget_exhausted: run.count(SKIPPED, &[("reason", "budget_exhausted")]),
        },
        divergences: DivergenceTotals {
            total: expected + unexpected,
            expected,
            unexpected,
            by_kind,
        },
        fallbacks,
        filter_decision_changes: FilterChanges {
            trace_to_skip: run.count(FILTER_CHANGES, &[("from", "trace"), ("to", "skip")]),
            skip_to_trace: run.count(FILTER_CHANGES, &[("from", "skip"), ("to", "trace")]),
        },
        engine_errors,
        timings,
        sampling: SamplingState {
            rate: run.get(SAMPLE_RATE, &[]),
        },
        // Only whether it ran out is in the metrics; the budget's settings are not.
        budget: BudgetState {
            fraction: None,
            floor_seconds: 0.0,
            shadow_seconds: 0.0,
            exhausted,
            exhausted_at_seconds: None,
        },
        artifacts: ArtifactState {
            dir: String::new(),
            divergence_lines: 0,
            write_errors: run.count(ARTIFACT_ERRORS, &[]),
            first_write_error: None,
        },
        // How the program was started is only in summary.json.
        program: None,
    };
    RunReport {
        dir: PathBuf::from(format!("prometheus{{{}}}", run.target)),
        summary,
        divergences: Vec::new(),
        log: LogState::FromMetrics {
            finished: run.finished(),
        },
        // Scraped or pushed runs have no run directory, so no run.json.
        marker: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(m: Option<&str>) -> PrometheusSource {
        PrometheusSource {
            url: "http://p:9090".into(),
            since: Duration::from_secs(3600),
            matchers: m.map(Into::into),
        }
    }

    #[test]
    fn selector_takes_matchers_with_or_without_braces() {
        let a = source(Some("{job=\"ci\"}")).selector().unwrap();
        let b = source(Some("job=\"ci\"")).selector().unwrap();
        assert_eq!(a, b);
        assert!(a.ends_with(",job=\"ci\"}[3600s]"), "{a}");
        assert!(source(Some("{a=\"1\"}{b=\"2\"}")).selector().is_err());
    }

    #[test]
    fn since_parses_durations_and_refuses_nonsense() {
        assert_eq!(parse_since("7d").unwrap(), Duration::from_secs(7 * 86400));
        assert_eq!(parse_since("90m").unwrap(), Duration::from_secs(5400));
        assert!(parse_since("soon").is_err());
        assert!(parse_since("0s").is_err());
    }

    #[test]
    fn answers_that_are_not_prometheus_are_refused() {
        assert!(parse_matrix("<html>hello</html>").is_err());
        assert!(parse_matrix("{\"status\":\"success\"}").is_err());
        let e = parse_matrix(
            "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"parse error\"}",
        )
        .err()
        .unwrap();
        assert!(e.contains("parse error") && e.contains("bad_data"), "{e}");
    }
}
