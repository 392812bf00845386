//! Push and delete against a real Pushgateway (Debian package `prometheus-pushgateway`,
//! installed by the project's set-up), started here on a free loopback port without
//! persistence. A missing binary fails the test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ct_shadow::metrics::RecorderInfo;
use ct_shadow::push::{self, PushError};
use ct_shadow::{DivergenceKind, Engine, Metrics};

/// The gateway process; killed (by its own pid) when dropped.
struct Gateway {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some((status, text))
}

fn start_gateway() -> Gateway {
    // A port freed a moment ago can be taken by someone else; retry a few times.
    for _ in 0..5 {
        let addr = free_port();
        let child = Command::new("prometheus-pushgateway")
            .arg(format!("--web.listen-address={addr}"))
            .arg("--persistence.file=")
            .arg("--log.level=error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-pushgateway must be installed (scripts/install-system-deps.sh)");
        let mut gw = Gateway { child, addr };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(15) {
            if let Some((200, _)) = http_get(addr, "/-/ready") {
                return gw;
            }
            if gw.child.try_wait().unwrap().is_some() {
                break; // exited: port taken, try another
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // `gw` is dropped here, killing the process before the next try.
    }
    panic!("prometheus-pushgateway did not become ready");
}

fn metrics() -> Metrics {
    let m = Metrics::new(&RecorderInfo {
        version: "0.1.0".into(),
        primary: Engine::Legacy,
        shadow: Some(Engine::Globals),
    });
    for _ in 0..3 {
        m.inc_comparisons();
    }
    m.inc_divergence(DivergenceKind::MainScript);
    m
}

fn series_line<'a>(text: &'a str, metric: &str, labels: &[&str]) -> Option<&'a str> {
    text.lines()
        .find(|l| l.starts_with(&format!("{metric}{{")) && labels.iter().all(|lab| l.contains(lab)))
}

#[test]
fn push_then_delete_on_a_real_pushgateway() {
    let gw = start_gateway();
    let url = format!("http://{}", gw.addr);
    let m = metrics();
    push::push(&url, "ct-record", "run-42", m.registry()).expect("push");
    // A run id that needs the base64 form.
    push::push(&url, "ct-record", "ci/7 nightly", m.registry()).expect("push with slash");

    let (status, text) = http_get(gw.addr, "/metrics").expect("gateway /metrics");
    assert_eq!(status, 200);
    let line = series_line(
        &text,
        "ct_shadow_comparisons_total",
        &[r#"job="ct-record""#, r#"run_id="run-42""#],
    )
    .unwrap_or_else(|| panic!("pushed series missing:\n{text}"));
    assert!(line.ends_with(" 3"), "{line}");
    assert!(series_line(
        &text,
        "ct_shadow_divergences_total",
        &[r#"kind="main_script""#, r#"run_id="run-42""#]
    )
    .is_some_and(|l| l.ends_with(" 1")));
    assert!(series_line(&text, "ct_recorder_info", &[r#"run_id="ci/7 nightly""#]).is_some());

    // Pushing again replaces the group (PUT), it does not add to it.
    m.inc_comparisons();
    push::push(&url, "ct-record", "run-42", m.registry()).expect("second push");
    let (_, text) = http_get(gw.addr, "/metrics").unwrap();
    let line = series_line(
        &text,
        "ct_shadow_comparisons_total",
        &[r#"run_id="run-42""#],
    )
    .unwrap();
    assert!(line.ends_with(" 4"), "{line}");

    push::delete(&url, "ct-record", "run-42").expect("delete");
    push::delete(&url, "ct-record", "ci/7 nightly").expect("delete base64 group");
    let (_, text) = http_get(gw.addr, "/metrics").unwrap();
    assert!(
        !text.contains(r#"run_id="run-42""#) && !text.contains("ci/7 nightly"),
        "groups still present after delete:\n{text}"
    );
}

#[test]
fn gateway_errors_are_reported_with_status() {
    let gw = start_gateway();
    // The gateway serves no API under this prefix: it answers 404, which must surface as an
    // error with the status, not as a successful push.
    let url = format!("http://{}/no-such-prefix", gw.addr);
    match push::push(&url, "ct-record", "r", metrics().registry()) {
        Err(e @ PushError::Status { status: 404, .. }) => {
            assert!(e.to_string().contains("404"), "{e}");
            assert!(
                e.to_string()
                    .contains("/no-such-prefix/metrics/job/ct-record"),
                "{e}"
            );
        }
        other => panic!("expected a 404 status error, got {other:?}"),
    }
}

#[test]
fn unreachable_gateway_is_a_clear_error() {
    let addr = free_port(); // nothing listens there any more
    let url = format!("http://{addr}");
    match push::push(&url, "ct-record", "r", metrics().registry()) {
        Err(e @ PushError::Unreachable { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&addr.to_string()) && msg.contains("unreachable"),
                "{msg}"
            );
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(matches!(
        push::delete("https://example.invalid", "j", "r"),
        Err(PushError::BadUrl { .. })
    ));
}
