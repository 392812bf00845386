//! Shadow artifacts end to end: the divergence log survives a kill, atomic files are never
//! seen half-written, the session writes what the docs promise, the summary fits a screen.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ct_shadow::artifacts::{DIVERGENCES_FILE, ROOTS_FILE, SHADOW_DIR};
use ct_shadow::*;

fn metrics(primary: Engine) -> Arc<Metrics> {
    Arc::new(Metrics::new(&RecorderInfo {
        version: "0.1.0".into(),
        primary,
        shadow: Some(primary.other()),
    }))
}

fn obs(
    file: &str,
    g: Option<&str>,
    l: Option<&str>,
    name: GlobalsName,
    spec: Option<&str>,
) -> Observation {
    let mut primary = EngineResult::unnamed(Engine::Globals);
    primary.name = g.map(Into::into);
    primary.elapsed_ns = 900;
    let mut shadow = EngineResult::unnamed(Engine::Legacy);
    shadow.name = l.map(Into::into);
    shadow.elapsed_ns = 120_000;
    Observation {
        filename: file.into(),
        qualname: "<module>".into(),
        is_module: true,
        globals_name: name,
        spec_name: spec.map(Into::into),
        sys_path_roots: "d24a5d125d6c74b2".into(),
        primary,
        shadow,
        thread_id: 11,
        first_seen: 0.01,
    }
}

fn root_ambiguity(i: usize) -> Observation {
    let n = format!("mypkg.mod_{i}");
    obs(
        &format!("/srv/app/src/mypkg/mod_{i}.py"),
        Some(&n),
        Some(&format!("src.{n}")),
        GlobalsName::str(n.clone()),
        Some(&n),
    )
}

const CHILD_ENV: &str = "CT_SHADOW_TEST_KILL_CHILD_DIR";

/// Child mode of the kill test: append divergences forever, reporting each on stdout.
fn child_writes_until_killed(dir: &str) -> ! {
    let mut log = DivergenceLog::create(Path::new(dir)).unwrap();
    let mut out = std::io::stdout();
    for i in 0.. {
        let d = compare(&root_ambiguity(i)).unwrap();
        log.append(&d).unwrap();
        writeln!(out, "wrote {i}").unwrap();
        out.flush().unwrap();
    }
    unreachable!()
}

#[test]
fn a_killed_writer_loses_at_most_the_last_line() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child_writes_until_killed(&dir);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_killed_writer_loses_at_most_the_last_line",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acknowledged = None;
    let reader = BufReader::new(child.stdout.take().unwrap());
    let t = Instant::now();
    for line in reader.lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("wrote ") {
            let n: u64 = n.trim().parse().unwrap();
            acknowledged = Some(n);
            if n >= 300 {
                break;
            }
        }
        assert!(t.elapsed() < Duration::from_secs(60), "child too slow");
    }
    child.kill().unwrap(); // SIGKILL: no destructors, no flushing
    child.wait().unwrap();
    let acknowledged = acknowledged.expect("child wrote nothing");

    let text = std::fs::read_to_string(dir.path().join(DIVERGENCES_FILE)).unwrap();
    let complete: Vec<&str> = text
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .collect();
    // Every line the child reported as written is on disk, whole.
    assert!(
        complete.len() as u64 > acknowledged,
        "{} complete lines, {} acknowledged",
        complete.len(),
        acknowledged + 1
    );
    for (i, l) in complete.iter().enumerate() {
        let d: Divergence = serde_json::from_str(l).unwrap_or_else(|e| panic!("line {i}: {e}"));
        assert_eq!(d.schema, "ct-shadow/divergence/v2");
        assert_eq!(d.filename, format!("/srv/app/src/mypkg/mod_{i}.py"));
    }
    // At most one torn line, at the end; the reader skips it.
    let torn = text.len() - complete.iter().map(|l| l.len()).sum::<usize>();
    assert!(torn == 0 || !text[text.len() - torn..].contains('\n'));
    let read = read_divergences(&dir.path().join(DIVERGENCES_FILE)).unwrap();
    assert_eq!(read.len(), complete.len());
}

#[test]
fn log_lines_are_on_disk_before_append_returns() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = DivergenceLog::create(dir.path()).unwrap();
    for i in 0..5 {
        log.append(&compare(&root_ambiguity(i)).unwrap()).unwrap();
        // Read through another handle while the log is still open.
        let text = std::fs::read_to_string(log.path()).unwrap();
        assert_eq!(text.lines().count(), i + 1);
        assert!(text.ends_with('\n'));
    }
}

#[test]
fn atomic_writes_are_never_seen_half_done() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.json");
    let doc = |fill: char| {
        let v: Vec<String> = (0..20_000).map(|i| format!("{fill}{i}")).collect();
        serde_json::to_string(&v).unwrap()
    };
    let (a, b) = (doc('a'), doc('b'));
    write_atomic(&path, |w| w.write_all(a.as_bytes())).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                let text = std::fs::read_to_string(&path).unwrap();
                let v: Vec<String> = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("read a partial file ({} bytes): {e}", text.len()));
                assert_eq!(v.len(), 20_000);
                reads += 1;
            }
            reads
        })
    };
    for i in 0..200 {
        let doc = if i % 2 == 0 { &b } else { &a };
        write_atomic(&path, |w| {
            // Write in pieces, as a serializer would.
            for chunk in doc.as_bytes().chunks(4096) {
                w.write_all(chunk)?;
            }
            Ok(())
        })
        .unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["summary.json"], "temporary files left behind");
}

#[test]
fn a_failed_atomic_write_leaves_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.prom");
    write_atomic(&path, |w| w.write_all(b"old\n")).unwrap();
    let err = write_atomic(&path, |w| {
        w.write_all(b"half of the new")?;
        Err(std::io::Error::other("serializer failed"))
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "serializer failed");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn session_writes_log_roots_summary_and_metrics() {
    let run = tempfile::tempdir().unwrap();
    let m = metrics(Engine::Globals);
    let s = ShadowSession::start(ShadowConfig::new(run.path()), m.clone()).unwrap();
    let digest = s.register_roots(&["/srv/app/src", "/srv/app"]);
    assert_eq!(s.register_roots(&["/srv/app/src", "/srv/app"]), digest);
    let digest2 = s.register_roots(&["/srv/app"]);

    let mut cases = vec![
        root_ambiguity(1),
        obs(
            "/srv/app/m.py",
            Some("m"),
            Some("m"),
            GlobalsName::str("m"),
            Some("m"),
        ),
        obs(
            "/srv/app/gen.py",
            None,
            Some("gen"),
            GlobalsName::Missing,
            None,
        ),
        obs(
            "/srv/app/pkg/mod.py",
            None,
            Some("pkg.mod"),
            GlobalsName::str("pkg.mod"),
            Some("pkg.mod"),
        ),
    ];
    let mut changed = root_ambiguity(2);
    changed.primary.filter = Some(FilterOutcome {
        module_name: None,
        exec: Exec::Trace,
        rule: None,
    });
    changed.shadow.filter = Some(FilterOutcome {
        module_name: None,
        exec: Exec::Skip,
        rule: Some(RuleRef {
            source: "builtin".into(),
            index: 3,
            selector: "pkg:glob:src.*".into(),
        }),
    });
    cases.push(changed);
    let kinds: Vec<_> = cases.iter().map(|o| s.observe(o).map(|d| d.kind)).collect();
    assert_eq!(
        kinds,
        [
            Some(DivergenceKind::RootAmbiguity),
            None,
            Some(DivergenceKind::GlobalsMissing),
            Some(DivergenceKind::Other),
            Some(DivergenceKind::FilterDecisionChanged),
        ]
    );

    let summary = s
        .finish(&RunMeta {
            run_id: "r-1".into(),
            command: vec!["ct-record".into(), "app.py".into()],
            ..RunMeta::default()
        })
        .unwrap();
    let dir = run.path().join(SHADOW_DIR);

    let log = read_divergences(&dir.join(DIVERGENCES_FILE)).unwrap();
    assert_eq!(log.len(), 4);
    assert_eq!(log[3].kind, DivergenceKind::FilterDecisionChanged);
    assert_eq!(
        log[3]
            .legacy()
            .filter
            .as_ref()
            .unwrap()
            .rule
            .as_ref()
            .unwrap()
            .selector,
        "pkg:glob:src.*"
    );

    let roots: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(ROOTS_FILE)).unwrap()).unwrap();
    assert_eq!(roots["schema"], "ct-shadow/roots/v1");
    assert_eq!(
        roots["roots"][&digest],
        serde_json::json!(["/srv/app/src", "/srv/app"])
    );
    assert_eq!(roots["roots"][&digest2], serde_json::json!(["/srv/app"]));

    // Compared as JSON values: both sides go through the same float parsing.
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&serde_json::to_string(&summary).unwrap()).unwrap();
    assert_eq!(on_disk, expected);
    let _typed: Summary = serde_json::from_value(on_disk).unwrap();
    assert_eq!(summary.schema, "ct-shadow/summary/v1");
    assert_eq!(summary.run.meta.run_id, "r-1");
    assert_eq!(summary.comparisons, 5);
    assert_eq!(summary.divergences.total, 4);
    assert_eq!(summary.divergences.unexpected, 1); // `other`
    assert_eq!(summary.divergences.by_kind["other"].unexpected, 1);
    assert_eq!(summary.divergences.by_kind["globals_missing"].expected, 1);
    assert_eq!(summary.filter_decision_changes.skip_to_trace, 1);
    assert_eq!(summary.timings[&Engine::Legacy].count, 5);
    assert!((summary.timings[&Engine::Legacy].total_seconds - 5.0 * 120e-6).abs() < 1e-9);
    assert_eq!(summary.artifacts.divergence_lines, 4);
    assert_eq!(summary.artifacts.write_errors, 0);

    let prom = std::fs::read_to_string(dir.join("metrics.prom")).unwrap();
    assert!(prom.contains("ct_shadow_comparisons_total 5"), "{prom}");
    assert!(prom.contains(r#"ct_shadow_filter_decision_changes_total{from="skip",to="trace"} 1"#));
    assert!(prom.contains(r#"ct_shadow_divergences_total{kind="other",severity="medium"} 1"#));
}

#[test]
fn sampling_and_budget_gate_the_session() {
    let run = tempfile::tempdir().unwrap();
    let m = metrics(Engine::Legacy);
    let config = ShadowConfig {
        run_dir: run.path().into(),
        sampler: Sampler::new(0.5).unwrap(),
        budget: Some(Budget::new(0.01, Duration::from_millis(1)).unwrap()),
    };
    let s = ShadowSession::start(config, m.clone()).unwrap();
    let files: Vec<String> = (0..400).map(|i| format!("/srv/app/m{i}.py")).collect();
    let sampled: Vec<bool> = files.iter().map(|f| s.gate(f) == Gate::Compare).collect();
    let again: Vec<bool> = files.iter().map(|f| s.gate(f) == Gate::Compare).collect();
    assert_eq!(sampled, again);
    let n = sampled.iter().filter(|b| **b).count();
    assert!((150..250).contains(&n), "{n} of 400 sampled at 50%");
    assert_eq!(m.skipped(SkipReason::SampledOut), 2 * (400 - n as u64));

    // 5 ms of shadow time in one answer: far over 1% of a run this young, past the floor.
    let mut costly = root_ambiguity(0);
    costly.shadow.elapsed_ns = 5_000_000;
    assert!(
        s.observe(&costly).is_some(),
        "the answer in hand is still compared"
    );
    let state = s.budget_state();
    assert!(state.exhausted && state.exhausted_at_seconds.is_some());
    let f = files
        .iter()
        .find(|f| Sampler::new(0.5).unwrap().should_compare(f))
        .unwrap();
    assert_eq!(s.gate(f), Gate::BudgetExhausted);
    assert_eq!(m.skipped(SkipReason::BudgetExhausted), 1);
    assert!(m.render().contains("ct_shadow_budget_exhausted 1"));
    let summary = s.summary(&RunMeta::default());
    assert!(summary.budget.exhausted);
    assert_eq!(summary.sampling.rate, 0.5);
    assert!(render_summary(&summary).contains("EXHAUSTED"));
}

#[test]
fn log_write_failures_are_counted_not_raised() {
    let run = tempfile::tempdir().unwrap();
    let m = metrics(Engine::Globals);
    let s = ShadowSession::start(ShadowConfig::new(run.path()), m.clone()).unwrap();
    // Replace the shadow directory by a file: roots.json can no longer be written.
    let dir = run.path().join(SHADOW_DIR);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"in the way").unwrap();
    s.register_roots(&["/srv/app"]);
    assert_eq!(m.artifact_errors(), 1);
    assert!(s.finish(&RunMeta::default()).is_err());
    let summary = s.summary(&RunMeta::default());
    assert_eq!(summary.artifacts.write_errors, 2);
    assert!(summary
        .artifacts
        .first_write_error
        .unwrap()
        .contains(ROOTS_FILE));
}

#[test]
fn summary_fits_one_screen_even_when_everything_diverges() {
    let run = tempfile::tempdir().unwrap();
    let m = metrics(Engine::Globals);
    let s = ShadowSession::start(ShadowConfig::new(run.path()), m.clone()).unwrap();
    // Divergences of eleven kinds, more than the table lists one per line.
    let mut fails = root_ambiguity(3);
    fails.shadow.error = Some("boom".into());
    fails.shadow.fallback = Some(fallback::HOOK_ATTRIBUTE);
    for o in [
        root_ambiguity(1),
        obs("<string>", None, None, GlobalsName::Missing, None),
        obs(
            "/a/t.py",
            Some("__main__"),
            Some("t"),
            GlobalsName::str("__main__"),
            None,
        ),
        obs(
            "/a/c.py",
            Some("__main__"),
            Some("p.c"),
            GlobalsName::str("__main__"),
            Some("p.c"),
        ),
        obs(
            "/a/r.py",
            Some("x_1"),
            Some("plugins.r"),
            GlobalsName::str("x_1"),
            Some("x_1"),
        ),
        obs("<string>", Some("g"), None, GlobalsName::str("g"), None),
        obs("/a/g.py", None, Some("g"), GlobalsName::Missing, None),
        obs("/a/g.py", None, Some("g"), GlobalsName::str(" "), None),
        obs(
            "a/g.py",
            Some("a.g"),
            None,
            GlobalsName::str("a.g"),
            Some("a.g"),
        ),
        obs("/a/m.py", None, Some("m"), GlobalsName::str("m"), Some("m")),
        fails,
    ] {
        s.observe(&o);
    }
    // The worst case has the trace line too.
    let text = render_summary_with_trace(
        &s.summary(&RunMeta {
            run_id: "nightly-2024-05-01".into(),
            ..RunMeta::default()
        }),
        Some(TraceWritten {
            events_file: "trace-out/trace.bin",
            events: 123_456,
        }),
    );
    eprint!("{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() <= 25, "{} lines:\n{text}", lines.len());
    assert!(lines.iter().all(|l| l.chars().count() <= 120), "{text}");
    assert!(text.contains("nightly-2024-05-01"));
    assert!(
        lines.contains(&"trace:   trace-out/trace.bin (123456 events)"),
        "{text}"
    );
    assert!(text.contains("… 3 more kinds, 3 divergences"), "{text}");
    // The worst rows come first: unexpected kinds lead the table.
    let first_row = lines
        .iter()
        .position(|l| l.trim_start().starts_with("kind"))
        .unwrap()
        + 1;
    let first = lines[first_row].split_whitespace().next().unwrap();
    assert!(
        ["primary_error", "shadow_error", "other"].contains(&first),
        "{first} leads:\n{text}"
    );
    assert!(text.contains("hook_attribute 1"), "{text}");
}
