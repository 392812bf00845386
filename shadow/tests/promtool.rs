//! The rendered registry must pass `promtool check metrics` (naming conventions, help text,
//! units, format). promtool comes from the `prometheus` Debian package, which the project's
//! set-up installs; a missing promtool fails this test.

use std::io::Write;
use std::process::{Command, Stdio};

use ct_shadow::metrics::{RecorderInfo, SkipReason, TraceEvent};
use ct_shadow::{fallback, DivergenceKind, Engine, EngineResult, Exec, Metrics};

fn populated() -> Metrics {
    let m = Metrics::new(&RecorderInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        primary: Engine::Globals,
        shadow: Some(Engine::Legacy),
    });
    for (i, engine) in Engine::ALL.into_iter().enumerate() {
        for reason in fallback::ALL {
            let mut r = EngineResult::named(engine, "pkg.mod");
            r.fallback = Some(reason);
            r.elapsed_ns = 700 * (i as u64 + 1);
            m.observe_resolution(&r);
        }
        let mut r = EngineResult::unnamed(engine);
        r.error = Some("boom".into());
        r.elapsed_ns = 2_000_000;
        m.observe_resolution(&r);
        m.observe_resolution(&EngineResult::named(engine, "x"));
    }
    for k in DivergenceKind::ALL {
        m.inc_divergence(k);
        m.inc_comparisons();
    }
    m.inc_filter_change(Exec::Trace, Exec::Skip);
    m.inc_filter_change(Exec::Skip, Exec::Trace);
    for e in TraceEvent::ALL {
        m.add_trace_events(e, 3);
    }
    for s in SkipReason::ALL {
        m.inc_skipped(s);
    }
    m.set_budget_exhausted(true);
    m.inc_artifact_errors();
    m
}

#[test]
fn promtool_check_metrics_is_clean() {
    let text = populated().render();
    assert!(text.contains("ct_module_name_resolution_seconds_bucket"));
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (Debian package `prometheus`; scripts/install-system-deps.sh)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics ({}):\n{report}\n--- input ---\n{text}",
        out.status
    );
}

#[test]
fn promtool_catches_a_bad_metric() {
    // Guards the test above: the same pipe must fail on a lint problem.
    let bad = "# HELP ct_bad_count A counter without _total.\n# TYPE ct_bad_count counter\nct_bad_count 1\n";
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(bad.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() || !report.trim().is_empty());
}
