//! The /metrics server against real sockets: routes, abuse, slow clients, concurrency.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use ct_shadow::metrics::RecorderInfo;
use ct_shadow::server::{MetricsServer, ServerConfig, ServerError};
use ct_shadow::{DivergenceKind, Engine, Metrics};

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

fn exchange(addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read reply");
    let text = String::from_utf8(out).expect("utf-8 reply");
    let (head, body) = text.split_once("\r\n\r\n").expect("a full HTTP reply");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    Reply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
    )
}

fn metrics() -> Metrics {
    let m = Metrics::new(&RecorderInfo {
        version: "0.1.0".into(),
        primary: Engine::Globals,
        shadow: Some(Engine::Legacy),
    });
    m.inc_divergence(DivergenceKind::RootAmbiguity);
    m
}

fn start(config: ServerConfig) -> (MetricsServer, Metrics) {
    let m = metrics();
    let server = MetricsServer::start_with("127.0.0.1:0", m.registry().clone(), config)
        .expect("start server");
    (server, m)
}

#[test]
fn get_metrics_is_200_text_format() {
    let (server, m) = start(ServerConfig::default());
    assert_ne!(server.local_addr().port(), 0);
    let r = get(server.local_addr(), "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Type").as_deref(),
        Some("text/plain; version=0.0.4")
    );
    assert_eq!(r.header("Content-Length"), Some(r.body.len().to_string()));
    assert!(r
        .body
        .contains(r#"ct_shadow_divergences_total{kind="root_ambiguity",severity="medium"} 1"#));
    // Live: a later scrape sees later counts.
    m.inc_comparisons();
    m.inc_comparisons();
    let r = get(server.local_addr(), "/metrics?ts=1");
    assert!(
        r.body.contains("ct_shadow_comparisons_total 2"),
        "{}",
        r.body
    );
    server.shutdown();
}

#[test]
fn head_other_paths_and_methods() {
    let (server, _m) = start(ServerConfig::default());
    let a = server.local_addr();
    let head = exchange(a, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert!(
        head.header("Content-Length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 100
    );
    assert_eq!(get(a, "/").status, 404);
    let head404 = exchange(a, b"HEAD /nope HTTP/1.1\r\n\r\n");
    assert_eq!(head404.status, 404);
    assert!(head404.body.is_empty());
    assert_ne!(head404.header("Content-Length").as_deref(), Some("0"));
    assert_eq!(get(a, "/metrics/extra").status, 404);
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let r = exchange(
            a,
            format!("{method} /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
                .as_bytes(),
        );
        assert_eq!(r.status, 405, "{method}");
        let allow = r.header("Allow").expect("Allow header");
        assert!(allow.split(',').any(|m| m.trim() == "GET"), "{allow}");
    }
}

#[test]
fn malformed_requests_get_400_and_the_server_lives_on() {
    let (server, _m) = start(ServerConfig::default());
    let a = server.local_addr();
    for junk in [
        &b"garbage\r\n\r\n"[..],
        b"GET /metrics\r\n\r\n",
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"\x00\xff\xfe\x01\r\n\r\n",
        b"GET ftp://host/metrics HTTP/1.1\r\n\r\n",
        b"GET http:///metrics HTTP/1.1\r\n\r\n",
    ] {
        assert_eq!(exchange(a, junk).status, 400, "{junk:?}");
    }
    // The absolute form is not malformed: HTTP/1.1 servers must accept it (the host part
    // names whoever the client thinks it talks to, and is ignored).
    assert_eq!(
        exchange(a, b"GET http://elsewhere/metrics HTTP/1.1\r\n\r\n").status,
        200
    );
    // Oversized head.
    let mut big = b"GET /metrics HTTP/1.1\r\nX-Fill: ".to_vec();
    big.extend(vec![b'a'; 20_000]);
    big.extend_from_slice(b"\r\n\r\n");
    assert_eq!(exchange(a, &big).status, 431);
    // A client that connects and leaves without a word.
    drop(TcpStream::connect(a).unwrap());
    assert_eq!(get(a, "/metrics").status, 200);
}

#[test]
fn a_slow_client_does_not_block_other_scrapes() {
    let (server, _m) = start(ServerConfig {
        request_timeout: Duration::from_millis(3000),
        ..ServerConfig::default()
    });
    let a = server.local_addr();
    let mut slow = TcpStream::connect(a).unwrap();
    slow.write_all(b"GET /metr").unwrap();
    // Give the server time to hand the slow connection to a worker.
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    for _ in 0..5 {
        assert_eq!(get(a, "/metrics").status, 200);
    }
    assert!(
        t.elapsed() < Duration::from_millis(2000),
        "scrapes waited for the slow client: {:?}",
        t.elapsed()
    );
    // The slow client is cut off at its deadline with a 408.
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut out = String::new();
    slow.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 408"), "{out:?}");
}

#[test]
fn a_trickling_client_is_cut_off_at_the_request_deadline() {
    let (server, _m) = start(ServerConfig {
        request_timeout: Duration::from_millis(600),
        ..ServerConfig::default()
    });
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    let t = Instant::now();
    // One byte every 100 ms would reset a per-read timeout forever.
    let mut cut = false;
    for b in b"GET /metrics HTTP/1.1\r\nX: yyyyyyyyyyyyyyyyyyyyyyyyyyyy" {
        if s.write_all(&[*b]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if t.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let reply = String::from_utf8_lossy(&out);
    assert!(cut || reply.starts_with("HTTP/1.1 408"), "{reply:?}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[test]
fn hundred_concurrent_scrapes_all_succeed() {
    let (server, _m) = start(ServerConfig::default());
    let a = server.local_addr();
    let n = 100;
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let r = get(a, "/metrics");
                (r.status, r.body.contains("ct_recorder_info{"))
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results.len(), n);
    assert!(results.iter().all(|r| *r == (200, true)), "{results:?}");
}

#[test]
fn bind_errors_are_reported() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    match MetricsServer::start(&addr, metrics().registry().clone()) {
        Err(ServerError::Bind { addr: a, source }) => {
            assert_eq!(a, addr);
            assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
        }
        other => panic!("expected a bind error, got {other:?}"),
    }
    for bad in ["not an address", "127.0.0.1", "127.0.0.1:99999", ":"] {
        match MetricsServer::start(bad, metrics().registry().clone()) {
            Err(e @ ServerError::BadAddress { .. }) => {
                assert!(e.to_string().contains(bad), "{e}")
            }
            other => panic!("{bad}: expected BadAddress, got {other:?}"),
        }
    }
}

#[test]
fn shutdown_stops_serving_and_returns_promptly() {
    let (server, _m) = start(ServerConfig {
        request_timeout: Duration::from_millis(500),
        ..ServerConfig::default()
    });
    let a = server.local_addr();
    assert_eq!(get(a, "/metrics").status, 200);
    let _idle = TcpStream::connect(a).unwrap(); // holds a worker until its deadline
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    server.shutdown();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(
        TcpStream::connect(a).is_err(),
        "still accepting after shutdown"
    );
}

/// A request deadline no test waits for: an answer that came had no reason to wait.
const NEVER: Duration = Duration::from_secs(3600);

/// Whether the server has neither answered nor closed `s` (a non-blocking read would block).
fn still_waiting(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let waiting = matches!(
        (&*s).read(&mut byte),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    );
    s.set_nonblocking(false).unwrap();
    waiting
}

#[test]
fn two_hundred_idle_and_trickling_connections_do_not_starve_a_scrape() {
    let (server, _m) = start(ServerConfig {
        request_timeout: NEVER,
        ..ServerConfig::default()
    });
    let a = server.local_addr();
    let idle: Vec<TcpStream> = (0..200).map(|_| TcpStream::connect(a).unwrap()).collect();
    let mut trickling: Vec<TcpStream> = (0..200).map(|_| TcpStream::connect(a).unwrap()).collect();
    for s in trickling.iter_mut() {
        s.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ").unwrap();
    }
    // The idle clients never time out (NEVER), so a server that waits for them would never
    // answer: the scrape's own 20 s read timeout would fail the test.
    for round in 0..5 {
        for s in trickling.iter_mut() {
            s.write_all(b"y").unwrap();
        }
        let t = Instant::now();
        let r = get(a, "/metrics");
        eprintln!(
            "scrape {round} with 400 open connections: {:?}",
            t.elapsed()
        );
        assert_eq!(r.status, 200);
        assert!(r.body.contains("ct_recorder_info{"), "{}", r.body);
    }
    // All 400 are still open and unanswered: the scrape did not wait for any of them.
    assert!(idle.iter().chain(&trickling).all(still_waiting));
    server.shutdown();
}

#[test]
fn bytes_that_cannot_start_a_request_get_400_at_once() {
    let (server, _m) = start(ServerConfig {
        request_timeout: NEVER,
        ..ServerConfig::default()
    });
    let a = server.local_addr();
    // No end of head in any of these: only the early check can answer them (else NEVER).
    for junk in [
        &b"\x00\xff\xfe\x01"[..],
        b"G(T /metrics",
        b"GET /metrics HTTP/2",
        b"GET /metrics HTTP/1.1 extra",
        b"GET /metrics\r\nHost: x\r\n",
        b" /metrics HTTP/1.1",
    ] {
        assert_eq!(exchange(a, junk).status, 400, "{junk:?}");
    }
    // A valid beginning is waited for, not refused.
    let mut s = TcpStream::connect(a).unwrap();
    s.write_all(b"GET /metrics HTTP/1.").unwrap();
    assert_eq!(get(a, "/metrics").status, 200);
    assert!(still_waiting(&s));
}

#[test]
fn a_half_closed_request_gets_an_answer() {
    let (server, _m) = start(ServerConfig {
        request_timeout: NEVER,
        ..ServerConfig::default()
    });
    let a = server.local_addr();
    let reply = |raw: &[u8]| {
        let mut s = TcpStream::connect(a).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(raw).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    // A whole request line, then EOF instead of the blank line: served.
    let full = reply(b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
    assert!(full.starts_with("HTTP/1.1 200 "), "{full:?}");
    assert!(full.contains("ct_recorder_info{"));
    // Cut inside the request line: 400, not silence.
    let partial = reply(b"GET /metr");
    assert!(partial.starts_with("HTTP/1.1 400 "), "{partial:?}");
}

#[test]
fn when_full_the_oldest_waiting_connection_makes_room() {
    let (server, _m) = start(ServerConfig {
        max_connections: 4,
        request_timeout: NEVER,
        ..ServerConfig::default()
    });
    let a = server.local_addr();
    let first = TcpStream::connect(a).unwrap();
    // Accepted in order: each is known to the server before the next connects.
    std::thread::sleep(Duration::from_millis(50));
    let others: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(a).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(50));
    // The scrape is the fifth connection: the oldest idle one is closed for it.
    assert_eq!(get(a, "/metrics").status, 200);
    first
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut out = Vec::new();
    assert_eq!(
        (&first).read_to_end(&mut out).unwrap(),
        0,
        "closed without an answer"
    );
    assert!(others.iter().all(still_waiting));
}
