//! `load_run` on real run directories and on broken ones: every broken input gives an error
//! that names the file (and line) and what is wrong, never a panic.

mod common;

use std::fs;

use common::*;
use ct_reports::{load_run, LogState, ReportError};
use ct_shadow::{DivergenceKind, Engine};

fn mixed() -> Vec<Case> {
    vec![
        agree(0),
        root_ambiguity(1),
        root_ambiguity(2),
        other("/srv/app/pkg/broken.py"),
        agree(3),
    ]
}

#[test]
fn loads_what_the_session_wrote() {
    let runs = Runs::new();
    let dir = runs.root.path().join("run-a");
    let written = record_run(&dir, "run-a", Engine::Globals, &mixed());

    let run = load_run(&dir).unwrap();
    assert_eq!(run.dir, dir);
    assert_eq!(run.label(), "run-a");
    assert_eq!(run.summary.comparisons, 5);
    assert_eq!(run.summary.divergences, written.divergences);
    assert_eq!(run.summary.run.meta.run_id, "run-a");
    assert_eq!(
        run.log,
        LogState::Read {
            records: 3,
            torn_last_line: false
        }
    );
    let kinds: Vec<_> = run.divergences.iter().map(|d| d.kind).collect();
    assert_eq!(
        kinds,
        [
            DivergenceKind::RootAmbiguity,
            DivergenceKind::RootAmbiguity,
            DivergenceKind::Other
        ]
    );
    assert_eq!(run.divergences[2].filename, "/srv/app/pkg/broken.py");
    assert!(run.notes().is_empty(), "{:?}", run.notes());
}

#[test]
fn the_shadow_directory_itself_is_accepted() {
    let runs = Runs::new();
    let dir = runs.record("run-a", Engine::Globals, &mixed());
    let via_shadow = load_run(dir.join("shadow")).unwrap();
    let via_run = load_run(&dir).unwrap();
    assert_eq!(via_shadow.summary, via_run.summary);
    assert_eq!(via_shadow.divergences, via_run.divergences);
}

#[test]
fn a_directory_without_a_summary_says_so() {
    let runs = Runs::new();
    // A run without --shadow-compare: trace files, no shadow/summary.json.
    let dir = runs.root.path().join("plain");
    fs::create_dir_all(dir.join("shadow")).unwrap();
    fs::write(dir.join("trace.json"), "[]").unwrap();
    let e = load_run(&dir).unwrap_err();
    assert!(matches!(e, ReportError::MissingSummary { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&dir.display().to_string()), "{msg}");
    assert!(msg.contains("shadow/summary.json"), "{msg}");
    assert!(msg.contains("--shadow-compare"), "{msg}");
}

#[test]
fn a_missing_directory_says_so() {
    let runs = Runs::new();
    let dir = runs.root.path().join("does-not-exist");
    let e = load_run(&dir).unwrap_err();
    assert!(matches!(e, ReportError::NotADirectory { .. }), "{e:?}");
    assert!(e.to_string().contains("does-not-exist"), "{e}");
}

#[test]
fn malformed_summary_json_names_the_file_and_position() {
    let runs = Runs::new();
    let dir = runs.record("run-a", Engine::Globals, &mixed());
    let path = summary_path(&dir);
    fs::write(
        &path,
        "{\n  \"schema\": \"ct-shadow/summary/v1\",\n  \"comparisons\": 5,,\n}",
    )
    .unwrap();
    let e = load_run(&dir).unwrap_err();
    assert!(matches!(e, ReportError::MalformedSummary { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("line 3"), "{msg}");

    // An empty file (a summary never written) is malformed too, not a panic.
    fs::write(&path, "").unwrap();
    let e = load_run(&dir).unwrap_err();
    assert!(matches!(e, ReportError::MalformedSummary { .. }), "{e:?}");
}

#[test]
fn a_summary_of_another_schema_version_is_refused_by_name() {
    let runs = Runs::new();
    let dir = runs.record("run-a", Engine::Globals, &mixed());
    let path = summary_path(&dir);
    let text = fs::read_to_string(&path).unwrap();
    // A future summary: new schema, and a field renamed. The schema is what gets reported.
    let future = text
        .replace("ct-shadow/summary/v1", "ct-shadow/summary/v2")
        .replace("\"comparisons\"", "\"compared\"");
    fs::write(&path, future).unwrap();
    let e = load_run(&dir).unwrap_err();
    match &e {
        ReportError::UnsupportedSchema {
            found,
            expected,
            line,
            ..
        } => {
            assert_eq!(found.as_deref(), Some("ct-shadow/summary/v2"));
            assert_eq!(*expected, "ct-shadow/summary/v1");
            assert_eq!(*line, None);
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("summary.json"), "{msg}");
    assert!(msg.contains("ct-shadow/summary/v2"), "{msg}");

    // No schema at all.
    fs::write(&path, "{\"comparisons\": 5}").unwrap();
    let e = load_run(&dir).unwrap_err();
    assert!(
        matches!(&e, ReportError::UnsupportedSchema { found: None, .. }),
        "{e:?}"
    );
}

#[test]
fn a_summary_missing_a_field_names_the_field() {
    let runs = Runs::new();
    let dir = runs.record("run-a", Engine::Globals, &mixed());
    let path = summary_path(&dir);
    let mut v: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("comparisons");
    fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let e = load_run(&dir).unwrap_err();
    assert!(matches!(e, ReportError::MalformedSummary { .. }), "{e:?}");
    assert!(e.to_string().contains("comparisons"), "{e}");
}

#[test]
fn an_unreadable_summary_is_an_io_error_naming_it() {
    let runs = Runs::new();
    let dir = runs.record("run-a", Engine::Globals, &mixed());
    let path = summary_path(&dir);
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap(); // exists, cannot be read as a file
    let e = load_run(&dir).unwrap_err();
    assert!(matches!(e, ReportError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("summary.json"), "{e}");
}

#[test]
fn a_torn_last_line_is_skipped_and_noted() {
    let runs = Runs::new();
    let dir = runs.record("run-a", Engine::Globals, &mixed());
    let path = log_path(&dir);
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 3);
    // What a kill during the third write leaves: the line's first half, no newline.
    let last_start = text[..text.len() - 1].rfind('\n').unwrap() + 1;
    let cut = last_start + (text.len() - last_start) / 2;
    fs::write(&path, &text[..cut]).unwrap();

    let run = load_run(&dir).unwrap();
    assert_eq!(
        run.log,
        LogState::Read {
            records: 2,
            torn_last_line: true
        }
    );
    assert_eq!(run.divergences.len(), 2);
    // The counts still come from the summary: nothing is lost there.
    assert_eq!(run.summary.divergences.total, 3);
    let notes = run.notes().join("\n");
    assert!(notes.contains("cut short"), "{notes}");
    assert!(
        notes.contains("holds 2 records, the run wrote 3"),
        "{notes}"
    );
}

#[test]
fn a_whole_last_line_without_its_newline_is_kept() {
    let runs = Runs::new();
    let dir = runs.record("run-a", Engine::Globals, &mixed());
    let path = log_path(&dir);
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text.trim_end_matches('\n')).unwrap();
    let run = load_run(&dir).unwrap();
    assert_eq!(
        run.log,
        LogState::Read {
            records: 3,
            torn_last_line: false
        }
    );
}

#[test]
fn a_malformed_middle_line_is_an_error_with_its_line_number() {
    let runs = Runs::new();
    let dir = runs.record("run-a", Engine::Globals, &mixed());
    let path = log_path(&dir);
    let text = fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let torn = &lines[1][..40];
    lines[1] = torn; // a torn line that is not the last one: corruption, not a kill
    fs::write(&path, lines.join("\n") + "\n").unwrap();

    let e = load_run(&dir).unwrap_err();
    match &e {
        ReportError::MalformedLine { line, .. } => assert_eq!(*line, 2),
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("divergences.ndjson: line 2"), "{msg}");
    assert!(msg.contains("not JSON"), "{msg}");
}

#[test]
fn a_json_line_that_is_not_a_record_is_an_error_with_its_line_number() {
    let runs = Runs::new();
    let dir = runs.record("run-a", Engine::Globals, &mixed());
    let path = log_path(&dir);
    let text = fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    v["kind"] = "renamed_kind".into();
    lines[0] = v.to_string();
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    let e = load_run(&dir).unwrap_err();
    assert!(
        matches!(e, ReportError::MalformedLine { line: 1, .. }),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains("line 1: not a divergence record"), "{msg}");
    assert!(msg.contains("renamed_kind"), "{msg}");
}

#[test]
fn a_record_of_another_schema_is_refused_with_its_line_number() {
    let runs = Runs::new();
    let dir = runs.record("run-a", Engine::Globals, &mixed());
    let path = log_path(&dir);
    let text = fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[2] = lines[2].replace("ct-shadow/divergence/v2", "ct-shadow/divergence/v99");
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    let e = load_run(&dir).unwrap_err();
    match &e {
        ReportError::UnsupportedSchema { line, found, .. } => {
            assert_eq!(*line, Some(3));
            assert_eq!(found.as_deref(), Some("ct-shadow/divergence/v99"));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("line 3"), "{e}");
}

#[test]
fn a_missing_log_keeps_the_counts_and_is_noted() {
    let runs = Runs::new();
    let dir = runs.record("run-a", Engine::Globals, &mixed());
    fs::remove_file(log_path(&dir)).unwrap();
    let run = load_run(&dir).unwrap();
    assert_eq!(run.log, LogState::Missing);
    assert!(run.divergences.is_empty());
    assert_eq!(run.summary.divergences.total, 3);
    let notes = run.notes().join("\n");
    assert!(notes.contains("divergences.ndjson is missing"), "{notes}");

    // Without divergences a missing log is nothing to mention.
    let quiet = runs.record("run-b", Engine::Globals, &[agree(0)]);
    fs::remove_file(log_path(&quiet)).unwrap();
    assert!(load_run(&quiet).unwrap().notes().is_empty());
}

#[test]
fn blank_lines_carry_nothing() {
    let runs = Runs::new();
    let dir = runs.record("run-a", Engine::Globals, &mixed());
    let path = log_path(&dir);
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text.replacen('\n', "\n\n", 1)).unwrap();
    assert_eq!(load_run(&dir).unwrap().divergences.len(), 3);
}
