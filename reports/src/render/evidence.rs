//! The report sections about the evidence itself, shared by the text formats: the
//! unexpected rate with its confidence bound, and what was left out of the count (the same
//! run given more than once).

use crate::aggregate::Aggregate;
use crate::confidence::{CONFIDENCE, METHOD};
use crate::format::{count, n_of, rate};
use crate::gates::GateResult;

/// The heading of the confidence section.
pub(super) fn confidence_heading() -> String {
    format!(
        "Unexpected rate with {:.0}% confidence ({METHOD})",
        CONFIDENCE * 100.0
    )
}

/// The lines of the confidence section (without heading): the rate, its bound and, when a
/// rate gate was checked, how many further clean comparisons would pass it. Empty without
/// comparisons.
pub(super) fn confidence_lines(agg: &Aggregate, gates: &[GateResult]) -> Vec<String> {
    let Some(b) = agg.unexpected_bound else {
        return Vec::new();
    };
    let mut lines = vec![format!(
        "{} of {} = {}; {:.0}% upper bound {}",
        count(b.events),
        n_of(b.trials, "comparison", "comparisons"),
        rate(b.rate),
        CONFIDENCE * 100.0,
        rate(b.upper)
    )];
    for g in gates {
        let Some(c) = g.confidence else { continue };
        lines.push(match c.clean_comparisons_to_pass {
            Some(0) => format!("{}: the bound is within {}: passes", g.name, g.threshold),
            Some(m) => format!(
                "{}: the bound must be at most {}: {} more {} without an unexpected \
                 divergence would pass",
                g.name,
                g.threshold,
                count(m),
                if m == 1 { "comparison" } else { "comparisons" }
            ),
            None => format!(
                "{}: a threshold of {} cannot be shown by any finite evidence",
                g.name, g.threshold
            ),
        });
    }
    lines
}

/// What Prometheus contributed, then one note per run that more than one argument reached.
pub(super) fn duplicate_notes(agg: &Aggregate) -> Vec<String> {
    agg.prometheus
        .iter()
        .map(|p| p.note())
        .chain(agg.duplicates.iter().map(|d| d.note()))
        .collect()
}

/// The heading of the programs section.
pub(super) fn programs_heading() -> &'static str {
    "Programs covered"
}

/// One line: how many runs were scripts, `-m`, API, test runners, runpy, threaded.
pub(super) fn programs_line(agg: &Aggregate) -> String {
    let p = &agg.programs;
    let mut line = format!(
        "scripts {} · -m {} · ct_recorder.start() {} · test runners {} · runpy {} · \
         threaded {} · evidence-only {}",
        count(p.scripts),
        count(p.modules),
        count(p.api),
        count(p.test_runners),
        count(p.runpy),
        count(p.threaded),
        count(p.evidence_only)
    );
    if p.unknown > 0 {
        line.push_str(&format!(
            " · not known {} (from Prometheus, or older summaries)",
            count(p.unknown)
        ));
    }
    line
}
