//! Readiness gates: [`Gates`] from the rollout manifest's `[gates]` table, and [`check`].

use std::fmt;

use serde::Serialize;

use crate::aggregate::Aggregate;
use crate::confidence::{clean_trials_to_pass, RateBound};
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
    /// For a rate gate: the measured rate, its bound (which is `actual`) and how much more
    /// clean evidence would pass. Absent for count gates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<GateConfidence>,
}

/// The confidence part of a rate gate's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GateConfidence {
    /// The rate and the upper end of its interval.
    #[serde(flatten)]
    pub bound: RateBound,
    /// The fewest further comparisons without an unexpected divergence after which the bound
    /// would be at most the threshold (0 when the gate passes); `None` when no number would
    /// do (a threshold of 0).
    pub clean_comparisons_to_pass: Option<u64>,
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
            confidence: None,
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
            confidence: None,
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
                confidence: None,
                name: MAX_UNEXPECTED_RATE.to_owned(),
                passed: false,
                actual: Measure::None,
                threshold: Measure::Rate(max),
                explanation: format!(
                    "no comparisons, so no rate: this gate cannot pass until the engines have \
                     been compared ({u} unexpected divergences counted)"
                ),
            },
            Some(_) => rate_gate(agg, max),
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
            confidence: None,
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
            confidence: None,
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

/// The unexpected-divergence rate gate: the upper end of the rate's 95 % Clopper–Pearson
/// interval against the threshold (see [`crate::confidence`]).
fn rate_gate(agg: &Aggregate, max: f64) -> GateResult {
    let bound = agg
        .unexpected_bound
        .expect("called with comparisons, so with a bound");
    let to_pass = clean_trials_to_pass(bound.events, bound.trials, max);
    let passed = bound.upper <= max;
    let measured = format!(
        "{} in {} = {}",
        n_of(
            bound.events,
            "unexpected divergence",
            "unexpected divergences"
        ),
        n_of(bound.trials, "comparison", "comparisons"),
        rate(bound.rate)
    );
    let bound_text = format!(
        "95% upper bound ({}) {}",
        crate::confidence::METHOD,
        rate(bound.upper)
    );
    let more = match to_pass {
        Some(m) => format!(
            "{} more {} without an unexpected divergence would pass",
            count(m),
            if m == 1 { "comparison" } else { "comparisons" }
        ),
        None => "no amount of evidence bounds a rate at exactly 0: set the gate above 0 \
                 (0.001 = 0.1%)"
            .to_owned(),
    };
    let explanation = if passed {
        format!("{measured}; {bound_text}, at most {} allowed", rate(max))
    } else if bound.rate <= max {
        format!(
            "{measured}, but its {bound_text} is above the {} allowed: too few comparisons \
             to show the rate is that low; {more}",
            rate(max)
        )
    } else {
        format!(
            "{measured} ({bound_text}), more than the {} allowed: these are differences \
             ADR 0016 does not predict; see the top unexpected divergences and fix the engine \
             or the taxonomy (else {more})",
            rate(max)
        )
    };
    GateResult {
        name: MAX_UNEXPECTED_RATE.to_owned(),
        passed,
        actual: Measure::Rate(bound.upper),
        threshold: Measure::Rate(max),
        explanation,
        confidence: Some(GateConfidence {
            bound,
            clean_comparisons_to_pass: to_pass,
        }),
    }
}
