//! One run is one run: however many arguments reach a run (the same directory twice, the run
//! directory and its `shadow/`, a copy elsewhere), [`load_evidence`] counts it once and says
//! so; [`assess`] gates on the distinct runs.

mod common;

use std::path::Path;

use common::*;
use ct_reports::{assess, load_evidence, render, Format, Gates, ReportError};
use ct_shadow::Engine;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn cases(n: usize) -> Vec<Case> {
    let mut c: Vec<Case> = (0..n).map(agree).collect();
    c.push(other("/srv/app/pkg/odd.py"));
    c
}

#[test]
fn the_same_run_given_five_ways_counts_once() {
    let runs = Runs::new();
    let run = runs.record("1700000000-4242", Engine::Legacy, &cases(6));
    let copy = runs.root.path().join("elsewhere").join("copied");
    copy_dir(&run, &copy);
    let args = vec![
        run.clone(),
        run.clone(),
        run.join("shadow"),
        copy.clone(),
        copy.join("shadow"),
    ];
    let evidence = load_evidence(&args).unwrap();
    assert_eq!(evidence.runs.len(), 1);
    assert_eq!(evidence.runs[0].dir, run);
    assert_eq!(evidence.duplicates.len(), 1);
    let d = &evidence.duplicates[0];
    assert_eq!(d.run_id, "1700000000-4242");
    assert_eq!(d.ignored.len(), 4);

    // min_runs = 5 does not pass on one run given five times.
    let gates = Gates::from_manifest("[gates]\nmin_runs = 5\n").unwrap();
    let a = assess(&evidence, &gates);
    assert_eq!(a.aggregate.run_count, 1);
    assert_eq!(a.aggregate.comparisons, 7);
    assert_eq!(a.aggregate.divergences.unexpected, 1);
    assert!(!a.passed());
    assert!(
        a.gates[0].explanation.contains("1 run, at least 5"),
        "{a:#?}"
    );

    // The report says what was left out, in every format.
    let table = render(&a.aggregate, &a.gates, Format::Table);
    assert!(table.contains("COUNTED ONCE"), "{table}");
    assert!(
        table.contains("run 1700000000-4242 was given 5 times"),
        "{table}"
    );
    let md = render(&a.aggregate, &a.gates, Format::Markdown);
    assert!(md.contains("### Evidence (each run counted once)"), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&render(&a.aggregate, &a.gates, Format::Json)).unwrap();
    assert_eq!(
        json["aggregate"]["duplicates"][0]["ignored"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn distinct_runs_all_count() {
    let runs = Runs::new();
    let dirs: Vec<_> = (0..3)
        .map(|i| runs.record(&format!("1700000000-{i}"), Engine::Globals, &cases(2)))
        .collect();
    let evidence = load_evidence(&dirs).unwrap();
    assert_eq!(evidence.runs.len(), 3);
    assert!(evidence.duplicates.is_empty());
    let a = assess(&evidence, &Gates::default());
    assert_eq!(a.aggregate.comparisons, 9);
    let table = render(&a.aggregate, &a.gates, Format::Table);
    assert!(!table.contains("COUNTED ONCE"), "{table}");
}

#[test]
fn two_different_runs_claiming_one_id_are_an_error_naming_both() {
    let runs = Runs::new();
    let a = runs.root.path().join("a");
    let b = runs.root.path().join("b");
    record_run(&a, "1700000000-7", Engine::Globals, &cases(2));
    record_run(&b, "1700000000-7", Engine::Globals, &cases(5));
    let err = load_evidence(&[&a, &b]).unwrap_err();
    assert!(
        matches!(err, ReportError::ConflictingRuns { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&a.display().to_string())
            && text.contains(&b.display().to_string())
            && text.contains("1700000000-7")
            && text.contains("summaries differ"),
        "{text}"
    );
}

#[test]
fn without_a_run_id_the_shadow_directory_identifies_the_run() {
    let runs = Runs::new();
    let a = runs.root.path().join("a");
    let b = runs.root.path().join("b");
    record_run(&a, "", Engine::Globals, &cases(2));
    record_run(&b, "", Engine::Globals, &cases(2));
    let evidence = load_evidence(&[a.clone(), a.join("shadow"), b.clone()]).unwrap();
    assert_eq!(evidence.runs.len(), 2);
    assert_eq!(evidence.duplicates.len(), 1);
    assert_eq!(
        evidence.duplicates[0].ignored,
        [a.join("shadow").display().to_string()]
    );
}
