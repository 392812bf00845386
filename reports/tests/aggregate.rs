//! `aggregate` over runs recorded through the real session: totals are the summaries' sums,
//! details come from the logs, grouping and ordering are deterministic.

mod common;

use std::fs;

use common::*;
use ct_reports::{aggregate, aggregate_with, load_run, RunReport};
use ct_shadow::{fallback, DivergenceKind, Engine, Exec, Severity};

fn load(dirs: &[std::path::PathBuf]) -> Vec<RunReport> {
    dirs.iter().map(|d| load_run(d).unwrap()).collect()
}

#[test]
fn totals_are_the_sums_of_the_summaries() {
    let runs = Runs::new();
    let a = runs.record(
        "run-a",
        Engine::Globals,
        &[
            agree(0),
            agree(1),
            root_ambiguity(0),
            root_ambiguity(1),
            other("/srv/app/pkg/broken.py"),
        ],
    );
    // Legacy primary: the legacy error is now a primary_error; still unexpected.
    let b = runs.record(
        "run-b",
        Engine::Legacy,
        &[
            agree(0),
            root_ambiguity(2),
            legacy_error("/srv/app/pkg/flaky.py"),
        ],
    );
    let reports = load(&[a, b]);
    let agg = aggregate(&reports);

    assert_eq!(agg.run_count, 2);
    assert_eq!(agg.comparisons, 8);
    assert_eq!(agg.divergences.total, 5);
    assert_eq!(agg.divergences.expected, 3);
    assert_eq!(agg.divergences.unexpected, 2);
    assert_eq!(agg.unexpected_rate, Some(2.0 / 8.0));

    let k = &agg.divergences.by_kind;
    // Every kind is listed, zeros included, with its severity.
    assert_eq!(k.len(), DivergenceKind::ALL.len());
    assert_eq!(k["root_ambiguity"].expected, 3);
    assert_eq!(k["root_ambiguity"].unexpected, 0);
    assert_eq!(k["other"].unexpected, 1);
    assert_eq!(k["primary_error"].unexpected, 1);
    assert_eq!(k["primary_error"].severity, Severity::High);
    assert_eq!(k["shadow_error"].unexpected, 0);
    let worst: Vec<&str> = agg
        .divergences
        .worst_first()
        .iter()
        .map(|(k, _)| *k)
        .collect();
    assert_eq!(worst, ["primary_error", "other", "root_ambiguity"]);

    // Three legacy path_candidate fallbacks, whichever role legacy had.
    assert_eq!(agg.fallbacks[&Engine::Legacy][fallback::PATH_CANDIDATE], 3);
    assert_eq!(agg.engine_errors[&Engine::Legacy], 1);
    assert_eq!(agg.engine_errors[&Engine::Globals], 0);

    let lines: Vec<_> = agg
        .runs
        .iter()
        .map(|r| (r.run_id.as_str(), r.primary, r.comparisons, r.unexpected))
        .collect();
    assert_eq!(
        lines,
        [
            ("run-a", Engine::Globals, 5, 1),
            ("run-b", Engine::Legacy, 3, 1)
        ]
    );
}

#[test]
fn filter_decision_changes_keep_their_rule_pairs_with_counts() {
    let runs = Runs::new();
    let filters = "/srv/app/.codetracer/trace-filter.toml";
    let traced = rule(filters, 3, "pkg:glob:mypkg.*");
    let skipped = rule(filters, 5, "pkg:literal:mypkg.mod_9");
    let a = runs.record(
        "run-a",
        Engine::Globals,
        &[
            filter_change(1, Exec::Skip, traced.clone()),
            filter_change(2, Exec::Skip, traced.clone()),
            filter_change(9, Exec::Trace, skipped.clone()),
        ],
    );
    let b = runs.record(
        "run-b",
        Engine::Legacy,
        &[filter_change(3, Exec::Skip, traced.clone()), agree(0)],
    );
    let agg = aggregate(&load(&[a, b]));

    let f = &agg.filter_decision_changes;
    assert_eq!((f.total, f.skip_to_trace, f.trace_to_skip), (4, 3, 1));
    assert_eq!(f.rules.len(), 2, "{:#?}", f.rules);
    let first = &f.rules[0];
    assert_eq!(
        (first.from, first.to, first.count),
        (Exec::Skip, Exec::Trace, 3)
    );
    assert_eq!(first.legacy_rule, None);
    assert_eq!(first.globals_rule.as_ref(), Some(&traced));
    assert_eq!(first.example.filename, "/srv/app/src/mypkg/mod_1.py");
    assert_eq!(
        first.example.legacy_name.as_deref(),
        Some("src.mypkg.mod_1")
    );
    assert_eq!(first.example.globals_name.as_deref(), Some("mypkg.mod_1"));
    let second = &f.rules[1];
    assert_eq!(
        (second.from, second.to, second.count),
        (Exec::Trace, Exec::Skip, 1)
    );
    assert_eq!(second.globals_rule.as_ref(), Some(&skipped));

    // Their cause (root_ambiguity) is predicted, so they are expected divergences.
    assert_eq!(
        agg.divergences.by_kind["filter_decision_changed"].expected,
        4
    );
    assert_eq!(agg.divergences.unexpected, 0);
}

#[test]
fn top_unexpected_groups_by_kind_file_and_qualname_across_runs() {
    let runs = Runs::new();
    let broken = other("/srv/app/pkg/broken.py");
    let flaky = legacy_error("/srv/app/pkg/flaky.py");
    let flaky_fn = legacy_error("/srv/app/pkg/flaky.py").with_qualname("Flaky.run");
    let a = runs.record(
        "run-a",
        Engine::Globals,
        &[
            broken.clone(),
            broken.clone(),
            flaky.clone(),
            flaky_fn.clone(),
            root_ambiguity(0),
        ],
    );
    let b = runs.record(
        "run-b",
        Engine::Globals,
        &[broken.clone(), flaky.clone(), root_ambiguity(1)],
    );
    let reports = load(&[a, b]);
    let agg = aggregate(&reports);

    assert_eq!(agg.distinct_unexpected, 3);
    let top: Vec<_> = agg
        .top_unexpected
        .iter()
        .map(|g| (g.kind, g.qualname.as_str(), g.count, g.runs))
        .collect();
    assert_eq!(
        top,
        [
            (DivergenceKind::Other, "<module>", 3, 2),
            (DivergenceKind::ShadowError, "<module>", 2, 2),
            (DivergenceKind::ShadowError, "Flaky.run", 1, 1),
        ]
    );
    let g = &agg.top_unexpected[0];
    assert_eq!(g.filename, "/srv/app/pkg/broken.py");
    assert_eq!(g.example.kind, DivergenceKind::Other);
    assert_eq!(g.example.legacy().name.as_deref(), Some("pkg.broken"));
    // Expected divergences never appear here.
    assert!(agg
        .top_unexpected
        .iter()
        .all(|g| g.kind != DivergenceKind::RootAmbiguity));

    // The cut keeps the most frequent and still counts them all.
    let cut = aggregate_with(&reports, 1);
    assert_eq!(cut.top_unexpected.len(), 1);
    assert_eq!(cut.top_unexpected[0].count, 3);
    assert_eq!(cut.distinct_unexpected, 3);

    // Same runs, same aggregate.
    assert_eq!(aggregate(&reports), agg);
}

#[test]
fn a_lost_log_keeps_the_counts_but_not_the_details() {
    let runs = Runs::new();
    let a = runs.record(
        "run-a",
        Engine::Globals,
        &[
            other("/srv/app/pkg/broken.py"),
            filter_change(1, Exec::Skip, rule("builtin", 0, "pkg:glob:*")),
        ],
    );
    fs::remove_file(log_path(&a)).unwrap();
    let agg = aggregate(&load(&[a]));
    assert_eq!(agg.divergences.unexpected, 1);
    assert_eq!(agg.filter_decision_changes.total, 1);
    assert!(agg.filter_decision_changes.rules.is_empty());
    assert!(agg.top_unexpected.is_empty());
    assert_eq!(agg.distinct_unexpected, 0);
    assert!(
        agg.runs[0].notes[0].contains("missing"),
        "{:?}",
        agg.runs[0].notes
    );
}

#[test]
fn no_runs_means_no_rate() {
    let agg = aggregate(&[]);
    assert_eq!(agg.run_count, 0);
    assert_eq!(agg.comparisons, 0);
    assert_eq!(agg.unexpected_rate, None);
    assert!(agg.top_unexpected.is_empty());
}
