//! Readiness gates: [`Gates`] from the rollout manifest's `[gates]` table, and [`check`].

use std::fmt;

use serde::Serialize;

use crate::aggregate::Aggregate;
use crate::error::ReportError;
use crate::format::{count, n_of, rate};

/// The thresholds of `rollout.toml`'s `[gates]` table. A gate the table leaves out is not
/// checked.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Gates {
    /// At least this many runs.
    pub min_runs: Option<u64>,
    /// At least this many comparisons, over all runs.
    pub min_comparisons: Option<u64>,
    /// At most this fraction (0 to 1) of comparisons may be unexpected divergences.
    pub max_unexpected_divergence_rate: Option<f64>,
    /// At most this many code objects may change trace/skip decision.
    pub max_filter_decision_changes: Option<u64>,
    /// Keys of `[gates]` this version does not know. Each fails in [`check`]: a gate that
    /// cannot be checked must not pass silently (it may be a newer gate, or a typo that would
    /// otherwise switch a gate off).
    pub unknown: Vec<String>,
}

const MIN_RUNS: &str = "min_runs";
const MIN_COMPARISONS: &str = "min_comparisons";
const MAX_UNEXPECTED_RATE: &str = "max_unexpected_divergence_rate";
const MAX_FILTER_CHANGES: &str = "max_filter_decision_changes";

impl Gates {
    /// Reads the `[gates]` table of a rollout manifest (the text of `rollout.toml`). Other
    /// tables and keys are ignored; a manifest without `[gates]`, or with a gate of the wrong
    /// type or out of range, is an error naming the key.
    pub fn from_manifest(text: &str) -> Result<Gates, ReportError> {
        let manifest: toml::Table = toml::from_str(text).map_err(|e| ReportError::Manifest {
            reason: e.to_string().trim_end().to_owned(),
        })?;
        let table = match manifest.get("gates") {
            Some(toml::Value::Table(t)) => t,
            Some(other) => {
                return Err(invalid("gates", "a table", other));
            }
            None => {
                return Err(ReportError::Manifest {
                    reason: "no [gates] table: the manifest must state the readiness gates"
                        .to_owned(),
                })
            }
        };
        let mut gates = Gates::default();
        for (key, value) in table {
            match key.as_str() {
                MIN_RUNS => gates.min_runs = Some(whole(key, value)?),
                MIN_COMPARISONS => gates.min_comparisons = Some(whole(key, value)?),
                MAX_UNEXPECTED_RATE => {
                    gates.max_unexpected_divergence_rate = Some(fraction(key, value)?)
                }
                MAX_FILTER_CHANGES => gates.max_filter_decision_changes = Some(whole(key, value)?),
                _ => gates.unknown.push(key.clone()),
            }
        }
        Ok(gates)
    }
}

fn invalid(key: &str, wanted: &str, found: &toml::Value) -> ReportError {
    let key = if key == "gates" {
        "gates".to_owned()
    } else {
        format!("gates.{key}")
    };
    ReportError::Manifest {
        reason: format!("{key} must be {wanted}, found {found}"),
    }
}

fn whole(key: &str, value: &toml::Value) -> Result<u64, ReportError> {
    value
        .as_integer()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| invalid(key, "a whole number, 0 or more", value))
}

fn fraction(key: &str, value: &toml::Value) -> Result<f64, ReportError> {
    let f = match value {
        toml::Value::Float(f) => Some(*f),
        toml::Value::Integer(n) => Some(*n as f64),
        _ => None,
    };
    f.filter(|f| (0.0..=1.0).contains(f))
        .ok_or_else(|| invalid(key, "a fraction from 0 to 1 (0.001 = 0.1%)", value))
}

/// A gate's measured value or threshold.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Measure {
    Count(u64),
    /// A fraction, 0 to 1.
    Rate(f64),
    /// No value: a rate without comparisons, or an unknown gate (`null` in JSON).
    None,
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Measure::Count(n) => f.write_str(&count(*n)),
            Measure::Rate(r) => f.write_str(&rate(*r)),
            Measure::None => f.write_str("-"),
        }
    }
}

/// The verdict of one gate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GateResult {
    /// The manifest key, e.g. `min_runs`.
    pub name: String,
    pub passed: bool,
    pub actual: Measure,
    pub threshold: Measure,
    /// One or two sentences for a person: what was measured against what and, on failure,
    /// what to look at.
    pub explanation: String,
}

impl GateResult {
    /// The comparison the gate makes: `≥` for minimums, `≤` for maximums, `?` for unknown.
    pub fn relation(&self) -> &'static str {
        if self.threshold == Measure::None {
            "?"
        } else if self.name.starts_with("min_") {
            "≥"
        } else {
            "≤"
        }
    }
}

/// Whether every gate passed (true when there are none).
pub fn all_passed(results: &[GateResult]) -> bool {
    results.iter().all(|r| r.passed)
}

/// How to get more comparisons: raising `--shadow-sample` or `--shadow-budget` only helps
/// when the runs skipped code objects for that reason.
fn more_comparisons_advice(agg: &Aggregate) -> String {
    let s = &agg.skipped;
    let mut ways = vec!["record more or larger runs".to_owned()];
    if s.sampled_out > 0 {
        ways.push(format!(
            "raise --shadow-sample ({} sampled out)",
            count(s.sampled_out)
        ));
    }
    if s.budget_exhausted > 0 {
        ways.push(format!(
            "raise --shadow-budget ({} skipped after the time budget ran out)",
            count(s.budget_exhausted)
        ));
    }
    if ways.len() == 1 {
        return "record more or larger runs (every code object was already compared: none \
                sampled out, none skipped by the time budget)"
            .to_owned();
    }
    let last = ways.pop().unwrap_or_default();
    format!("{}, or {last}", ways.join(", "))
}

/// Checks `agg` against each configured gate, in the manifest's documented order
/// (`min_runs`, `min_comparisons`, `max_unexpected_divergence_rate`,
/// `max_filter_decision_changes`), then one failing result per unknown key.
pub fn check(agg: &Aggregate, gates: &Gates) -> Vec<GateResult> {
    let mut out = Vec::new();
    if let Some(min) = gates.min_runs {
        let n = agg.run_count;
        out.push(GateResult {
            name: MIN_RUNS.to_owned(),
            passed: n >= min,
            actual: Measure::Count(n),
            threshold: Measure::Count(min),
            explanation: if n >= min {
                format!(
                    "{}, at least {} required",
                    n_of(n, "run", "runs"),
                    count(min)
                )
            } else {
                format!(
                    "{}, at least {} required: record {} more shadow {} \
                     (ct-record --shadow-compare) on real workloads",
                    n_of(n, "run", "runs"),
                    count(min),
                    count(min - n),
                    if min - n == 1 { "run" } else { "runs" }
                )
            },
        });
    }
    if let Some(min) = gates.min_comparisons {
        let n = agg.comparisons;
        out.push(GateResult {
            name: MIN_COMPARISONS.to_owned(),
            passed: n >= min,
            actual: Measure::Count(n),
            threshold: Measure::Count(min),
            explanation: if n >= min {
                format!(
                    "{}, at least {} required",
                    n_of(n, "comparison", "comparisons"),
                    count(min)
                )
            } else {
                format!(
                    "{}, at least {} required: not enough evidence yet; {}",
                    n_of(n, "comparison", "comparisons"),
                    count(min),
                    more_comparisons_advice(agg)
                )
            },
        });
    }
    if let Some(max) = gates.max_unexpected_divergence_rate {
        let u = agg.divergences.unexpected;
        out.push(match agg.unexpected_rate {
            None => GateResult {
                name: MAX_UNEXPECTED_RATE.to_owned(),
                passed: false,
                actual: Measure::None,
                threshold: Measure::Rate(max),
                explanation: format!(
                    "no comparisons, so no rate: this gate cannot pass until the engines have \
                     been compared ({u} unexpected divergences counted)"
                ),
            },
            Some(r) => GateResult {
                name: MAX_UNEXPECTED_RATE.to_owned(),
                passed: r <= max,
                actual: Measure::Rate(r),
                threshold: Measure::Rate(max),
                explanation: if r <= max {
                    format!(
                        "{} in {} = {}, at most {} allowed",
                        n_of(u, "unexpected divergence", "unexpected divergences"),
                        n_of(agg.comparisons, "comparison", "comparisons"),
                        rate(r),
                        rate(max)
                    )
                } else {
                    format!(
                        "{} in {} = {}, more than the {} allowed: these are differences \
                         ADR 0016 does not predict; see the top unexpected divergences and fix \
                         the engine or the taxonomy",
                        n_of(u, "unexpected divergence", "unexpected divergences"),
                        n_of(agg.comparisons, "comparison", "comparisons"),
                        rate(r),
                        rate(max)
                    )
                },
            },
        });
    }
    if let Some(max) = gates.max_filter_decision_changes {
        let f = &agg.filter_decision_changes;
        let detail = format!(
            "trace→skip {}, skip→trace {}",
            count(f.trace_to_skip),
            count(f.skip_to_trace)
        );
        out.push(GateResult {
            name: MAX_FILTER_CHANGES.to_owned(),
            passed: f.total <= max,
            actual: Measure::Count(f.total),
            threshold: Measure::Count(max),
            explanation: if f.total <= max {
                format!(
                    "{} ({detail}), at most {} allowed",
                    n_of(f.total, "filter decision change", "filter decision changes"),
                    count(max)
                )
            } else {
                format!(
                    "{} would be recorded differently with the globals engine ({detail}), \
                     more than the {} allowed: see the deciding rules and update the trace \
                     filters to match the new names",
                    n_of(f.total, "code object", "code objects"),
                    count(max)
                )
            },
        });
    }
    for key in &gates.unknown {
        out.push(GateResult {
            name: key.clone(),
            passed: false,
            actual: Measure::None,
            threshold: Measure::None,
            explanation: format!(
                "gates.{key} is not a gate this version of ct-reports can check, so it fails \
                 rather than being ignored: fix its spelling or upgrade ct-reports"
            ),
        });
    }
    out
}
