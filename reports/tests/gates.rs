//! Gates from the rollout manifest, and their verdicts on aggregates of real runs.

mod common;

use common::*;
use ct_reports::confidence::upper_bound;
use ct_reports::{aggregate, all_passed, check, load_run, Aggregate, Gates, Measure};
use ct_shadow::{Engine, Exec};

/// The manifest shape of docs/rollout.md, with keys this crate does not read.
const MANIFEST: &str = r#"
[flag]
name = "module_name_from_globals"
default = false
description = "read module names from frame globals"

[rollout]
phase = "shadow"          # legacy | shadow | globals-default | legacy-deleted
owner = "runtime-team"

[gates]
min_runs = 5
min_comparisons = 10000
max_unexpected_divergence_rate = 0.001   # unexpected divergences / comparisons
max_filter_decision_changes = 0

[history]
shadow_started = 2024-05-01
"#;

fn gates(text: &str) -> Gates {
    Gates::from_manifest(text).unwrap()
}

fn manifest_error(text: &str) -> String {
    Gates::from_manifest(text).unwrap_err().to_string()
}

/// `n` runs of `per_run` agreeing comparisons each, plus `extra` cases in the last run.
fn evidence(n: usize, per_run: usize, extra: &[Case]) -> Aggregate {
    let runs = Runs::new();
    let mut reports = Vec::new();
    for r in 0..n {
        let mut cases: Vec<Case> = (0..per_run).map(agree).collect();
        if r + 1 == n {
            cases.extend_from_slice(extra);
        }
        let dir = runs.record(&format!("run-{r}"), Engine::Globals, &cases);
        reports.push(load_run(dir).unwrap());
    }
    aggregate(&reports)
}

#[test]
fn the_documented_manifest_parses_and_other_tables_are_ignored() {
    let g = gates(MANIFEST);
    assert_eq!(g.min_runs, Some(5));
    assert_eq!(g.min_comparisons, Some(10_000));
    assert_eq!(g.max_unexpected_divergence_rate, Some(0.001));
    assert_eq!(g.max_filter_decision_changes, Some(0));
    assert!(g.unknown.is_empty());
}

#[test]
fn manifest_errors_name_the_key_and_the_problem() {
    let e = manifest_error("[flag]\nname = \"x\"\n");
    assert!(e.contains("no [gates] table"), "{e}");
    let e = manifest_error("gates = 5\n");
    assert!(e.contains("gates must be a table"), "{e}");
    let e = manifest_error("[gates]\nmin_runs = -1\n");
    assert!(e.contains("gates.min_runs must be a whole number"), "{e}");
    assert!(e.contains("-1"), "{e}");
    let e = manifest_error("[gates]\nmin_comparisons = \"10k\"\n");
    assert!(e.contains("gates.min_comparisons"), "{e}");
    let e = manifest_error("[gates]\nmax_filter_decision_changes = 0.5\n");
    assert!(e.contains("gates.max_filter_decision_changes"), "{e}");
    for bad in ["1.5", "-0.001", "\"0.1%\"", "nan", "inf"] {
        let e = manifest_error(&format!(
            "[gates]\nmax_unexpected_divergence_rate = {bad}\n"
        ));
        assert!(
            e.contains("gates.max_unexpected_divergence_rate must be a fraction from 0 to 1"),
            "{bad}: {e}"
        );
    }
    // Not TOML at all: the parser's own position is kept.
    let e = manifest_error("[gates\nmin_runs = 5\n");
    assert!(e.starts_with("rollout manifest: "), "{e}");
    assert!(e.contains("line 1"), "{e}");
}

#[test]
fn a_whole_number_rate_is_a_fraction_too() {
    assert_eq!(
        gates("[gates]\nmax_unexpected_divergence_rate = 0\n").max_unexpected_divergence_rate,
        Some(0.0)
    );
}

#[test]
fn gates_left_out_are_not_checked() {
    let agg = evidence(1, 3, &[]);
    let results = check(&agg, &gates("[gates]\nmin_runs = 1\n"));
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].name, "min_runs");
    assert!(check(&agg, &gates("[gates]\n")).is_empty());
}

#[test]
fn an_unknown_gate_fails_instead_of_being_skipped() {
    let g = gates("[gates]\nmin_runs = 1\nmax_unexpected_rate = 0.01\n");
    assert_eq!(g.unknown, ["max_unexpected_rate"]);
    let results = check(&evidence(1, 3, &[]), &g);
    let unknown = results
        .iter()
        .find(|r| r.name == "max_unexpected_rate")
        .unwrap();
    assert!(!unknown.passed);
    assert_eq!(unknown.actual, Measure::None);
    assert!(
        unknown.explanation.contains("not a gate"),
        "{}",
        unknown.explanation
    );
    assert!(!all_passed(&results));
}

#[test]
fn every_gate_passes_on_enough_clean_evidence() {
    // 31 clean comparisons bound the rate at 11.2% (95% Clopper–Pearson): a 15% gate passes.
    let g = gates(
        "[gates]\nmin_runs = 3\nmin_comparisons = 30\n\
         max_unexpected_divergence_rate = 0.15\nmax_filter_decision_changes = 0\n",
    );
    let agg = evidence(3, 10, &[root_ambiguity(0)]);
    let results = check(&agg, &g);
    let names: Vec<_> = results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "min_runs",
            "min_comparisons",
            "max_unexpected_divergence_rate",
            "max_filter_decision_changes"
        ]
    );
    assert!(all_passed(&results), "{results:#?}");
    assert_eq!(results[0].actual, Measure::Count(3));
    assert_eq!(results[1].actual, Measure::Count(31));
    // The rate gate compares the bound, not the rate.
    assert_eq!(results[2].actual, Measure::Rate(upper_bound(0, 31)));
    assert_eq!(results[2].threshold, Measure::Rate(0.15));
    let c = results[2].confidence.unwrap();
    assert_eq!((c.bound.events, c.bound.trials, c.bound.rate), (0, 31, 0.0));
    assert_eq!(c.clean_comparisons_to_pass, Some(0));
}

#[test]
fn too_little_evidence_fails_the_minimums_with_what_is_missing() {
    let g = gates(MANIFEST);
    let agg = evidence(2, 4, &[]);
    let results = check(&agg, &g);
    let runs = &results[0];
    assert!(!runs.passed);
    assert_eq!(
        (runs.actual, runs.threshold),
        (Measure::Count(2), Measure::Count(5))
    );
    assert!(
        runs.explanation.contains("record 3 more"),
        "{}",
        runs.explanation
    );
    let comparisons = &results[1];
    assert!(!comparisons.passed);
    assert!(
        comparisons
            .explanation
            .contains("8 comparisons, at least 10,000 required"),
        "{}",
        comparisons.explanation
    );
    // Nothing unexpected, but 8 comparisons cannot show a rate under 0.1%.
    let rate = &results[2];
    assert!(!rate.passed, "{rate:#?}");
    assert!(
        rate.explanation.contains("too few comparisons")
            && rate
                .explanation
                .contains("without an unexpected divergence would pass"),
        "{}",
        rate.explanation
    );
    // Nothing changed: that one passes.
    assert!(results[3].passed, "{results:#?}");
}

#[test]
fn zero_in_43_fails_a_tenth_of_a_percent_gate_with_how_much_more_would_pass() {
    // docs/rollout.md works this example through.
    let g = gates("[gates]\nmax_unexpected_divergence_rate = 0.001\n");
    let agg = evidence(1, 43, &[]);
    assert_eq!((agg.comparisons, agg.divergences.unexpected), (43, 0));
    let r = &check(&agg, &g)[0];
    assert!(!r.passed, "{r:#?}");
    let c = r.confidence.unwrap();
    // 1 − 0.025^(1/43) = 8.22%.
    assert!((c.bound.upper - 0.082_211).abs() < 1e-5, "{c:?}");
    assert_eq!(r.actual, Measure::Rate(c.bound.upper));
    let more = c.clean_comparisons_to_pass.unwrap();
    assert!(upper_bound(0, 43 + more) <= 0.001, "{more}");
    assert!(upper_bound(0, 43 + more - 1) > 0.001, "{more}");
    assert!(
        r.explanation
            .contains("0 unexpected divergences in 43 comparisons = 0%")
            && r.explanation
                .contains("95% upper bound (Clopper-Pearson) 8.22%")
            && r.explanation.contains(&format!(
                "{} more comparisons without an unexpected divergence would pass",
                ct_fmt(more)
            )),
        "{}",
        r.explanation
    );
    // The same evidence and that many more clean comparisons pass.
    let enough = evidence(1, 43 + more as usize, &[]);
    let r = &check(&enough, &g)[0];
    assert!(r.passed, "{r:#?}");
}

/// `3644` → `3,644`, as the reports print counts.
fn ct_fmt(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[test]
fn unexpected_divergences_over_the_rate_fail() {
    let g = gates("[gates]\nmax_unexpected_divergence_rate = 0.1\n");
    // 1 unexpected in 10 comparisons: the rate is at the threshold, but its bound (44.5%)
    // is far above it.
    let at = evidence(1, 9, &[other("/srv/app/pkg/broken.py")]);
    assert_eq!(at.comparisons, 10);
    let r = &check(&at, &g)[0];
    assert!(!r.passed, "{r:#?}");
    assert_eq!(r.actual, Measure::Rate(upper_bound(1, 10)));
    assert!(
        r.explanation.contains("too few comparisons"),
        "{}",
        r.explanation
    );

    // 2 in 11: the rate itself is over.
    let over = evidence(
        1,
        9,
        &[
            other("/srv/app/pkg/broken.py"),
            other("/srv/app/pkg/worse.py"),
        ],
    );
    let r = &check(&over, &g)[0];
    assert!(!r.passed);
    assert!(
        r.explanation
            .contains("2 unexpected divergences in 11 comparisons = 18.2% (95% upper bound"),
        "{}",
        r.explanation
    );
    assert!(
        r.explanation.contains("more than the 10%"),
        "{}",
        r.explanation
    );
}

#[test]
fn a_zero_rate_gate_can_never_pass_and_says_so() {
    let g = gates("[gates]\nmax_unexpected_divergence_rate = 0\n");
    let r = &check(&evidence(1, 20, &[]), &g)[0];
    assert!(!r.passed);
    assert_eq!(r.confidence.unwrap().clean_comparisons_to_pass, None);
    assert!(
        r.explanation.contains("bounds a rate at exactly 0"),
        "{}",
        r.explanation
    );
}

#[test]
fn without_comparisons_the_rate_gate_cannot_pass() {
    let g = gates("[gates]\nmax_unexpected_divergence_rate = 0.5\n");
    let r = &check(&aggregate(&[]), &g)[0];
    assert!(!r.passed);
    assert_eq!(r.actual, Measure::None);
    assert!(
        r.explanation.contains("no comparisons"),
        "{}",
        r.explanation
    );
}

#[test]
fn filter_decision_changes_over_the_maximum_fail() {
    let traced = rule("builtin", 2, "pkg:glob:mypkg.*");
    let agg = evidence(
        1,
        5,
        &[
            filter_change(1, Exec::Skip, traced.clone()),
            filter_change(2, Exec::Trace, traced),
        ],
    );
    let r = &check(&agg, &gates("[gates]\nmax_filter_decision_changes = 2\n"))[0];
    assert!(r.passed, "{r:#?}");
    let r = &check(&agg, &gates("[gates]\nmax_filter_decision_changes = 0\n"))[0];
    assert!(!r.passed);
    assert_eq!(r.actual, Measure::Count(2));
    assert!(
        r.explanation.contains("trace→skip 1, skip→trace 1"),
        "{}",
        r.explanation
    );
    assert!(
        r.explanation.contains("deciding rules"),
        "{}",
        r.explanation
    );
}

#[test]
fn min_comparisons_advice_suggests_only_what_would_help() {
    let g = gates("[gates]\nmin_comparisons = 10000\n");
    let why = |agg: &Aggregate| check(agg, &g)[0].explanation.clone();
    // Everything was compared: raising the sample or the budget cannot help.
    let mut agg = evidence(1, 3, &[]);
    let full = why(&agg);
    assert!(full.contains("record more or larger runs"), "{full}");
    assert!(!full.contains("raise --shadow-sample"), "{full}");
    assert!(!full.contains("raise --shadow-budget"), "{full}");
    assert!(
        full.contains("every code object was already compared"),
        "{full}"
    );
    // Code objects were sampled out: now raising --shadow-sample helps, the budget does not.
    agg.skipped.sampled_out = 40;
    let sampled = why(&agg);
    assert!(
        sampled.contains("raise --shadow-sample (40 sampled out)"),
        "{sampled}"
    );
    assert!(!sampled.contains("--shadow-budget"), "{sampled}");
    agg.skipped.budget_exhausted = 7;
    let both = why(&agg);
    assert!(both.contains("raise --shadow-budget (7 skipped"), "{both}");
}
