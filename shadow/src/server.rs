//! The `/metrics` endpoint (`ct-record --metrics-addr HOST:PORT`).
//!
//! A deliberately small HTTP/1.x server on std's `TcpListener`: one accept thread hands
//! connections to a fixed pool of worker threads through a bounded queue. No async runtime:
//! a scrape is one short request per 15 s or so, and a pool of plain threads bounds memory
//! and threads no matter how many clients connect.
//!
//! Behaviour:
//! - `GET /metrics` (any query string): 200, the registry in the text format,
//!   `Content-Type: text/plain; version=0.0.4`.
//! - `HEAD /metrics`: the same headers, no body (HEAD is supported on every path).
//! - any other path: 404; any other method: 405 with `Allow: GET, HEAD`.
//! - the target may be in origin form (`/metrics`) or, as HTTP/1.1 requires servers to
//!   accept, in absolute form (`http://host:port/metrics`);
//! - a request line that is not `METHOD TARGET HTTP/1.x`: 400; headers over 8 KiB: 431;
//!   a request not complete within the request timeout (5 s; a whole-request deadline, not
//!   per read, so a client trickling bytes cannot hold a worker longer): 408.
//! - every response closes the connection.
//!
//! A slow client holds one worker at most until its deadline; the other workers keep serving
//! scrapes. Excess connections wait in the queue, then in the kernel's listen backlog.
//!
//! The server only reads the Prometheus registry; it never needs the GIL or anything else from
//! Python. [`MetricsServer::shutdown`] (or dropping the server) stops accepting, lets queued
//! connections finish and joins every thread.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus::Registry;

use crate::metrics::{render_registry, TEXT_FORMAT};

/// Tuning of the server; [`ServerConfig::default`] suits a recorder.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Connections served at once.
    pub workers: usize,
    /// Accepted connections waiting for a worker.
    pub queue: usize,
    /// Deadline for receiving a whole request.
    pub request_timeout: Duration,
    /// Largest accepted request head (request line and headers).
    pub max_request_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            workers: 8,
            queue: 256,
            request_timeout: Duration::from_secs(5),
            max_request_bytes: 8 * 1024,
        }
    }
}

/// Why the server could not start.
#[derive(Debug)]
pub enum ServerError {
    /// `HOST:PORT` could not be parsed or resolved.
    BadAddress { addr: String, reason: String },
    /// Binding failed (port in use, address not local, permission denied...).
    Bind { addr: String, source: io::Error },
    /// A server thread could not be started.
    Spawn(io::Error),
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerError::BadAddress { addr, reason } => {
                write!(
                    f,
                    "--metrics-addr {addr:?} is not a usable HOST:PORT: {reason}"
                )
            }
            ServerError::Bind { addr, source } => {
                write!(f, "cannot serve metrics on {addr}: {source}")
            }
            ServerError::Spawn(e) => write!(f, "cannot start the metrics server thread: {e}"),
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServerError::Bind { source, .. } | ServerError::Spawn(source) => Some(source),
            ServerError::BadAddress { .. } => None,
        }
    }
}

/// A running `/metrics` server.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl MetricsServer {
    /// Serves `registry` on `addr` (`HOST:PORT`; port 0 picks a free port, see
    /// [`MetricsServer::local_addr`]).
    pub fn start(addr: &str, registry: Registry) -> Result<MetricsServer, ServerError> {
        Self::start_with(addr, registry, ServerConfig::default())
    }

    pub fn start_with(
        addr: &str,
        registry: Registry,
        config: ServerConfig,
    ) -> Result<MetricsServer, ServerError> {
        let listener = bind(addr)?;
        let local = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: addr.to_owned(),
            source,
        })?;
        let stopping = Arc::new(AtomicBool::new(false));
        let (tx, rx) = sync_channel::<TcpStream>(config.queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let config = Arc::new(config);
        let mut threads = Vec::new();
        let mut spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name)
                .spawn(f)
                .map(|h| threads.push(h))
        };
        for i in 0..config.workers.max(1) {
            let (rx, registry, config) = (rx.clone(), registry.clone(), config.clone());
            let started = spawn(
                format!("ct-metrics-{i}"),
                Box::new(move || worker(&rx, &registry, &config)),
            );
            if let Err(e) = started {
                drop(tx); // the workers already running see the queue close and exit
                return Err(ServerError::Spawn(e));
            }
        }
        let stop = stopping.clone();
        let started = spawn(
            "ct-metrics-accept".into(),
            Box::new(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    match conn {
                        Ok(stream) => {
                            if tx.send(stream).is_err() {
                                break;
                            }
                        }
                        // Out of descriptors and the like: back off instead of spinning.
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            }),
        );
        let server = MetricsServer {
            addr: local,
            stopping,
            threads,
        };
        started.map_err(ServerError::Spawn)?;
        Ok(server)
    }

    /// The address actually bound (with the port picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, serves what was already accepted and joins every thread. A worker
    /// busy with a slow client returns by that client's request deadline at the latest.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the accept thread, blocked in accept(), with a connection of our own.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn bind(addr: &str) -> Result<TcpListener, ServerError> {
    let bad = |reason: String| ServerError::BadAddress {
        addr: addr.to_owned(),
        reason,
    };
    let candidates: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .collect();
    let mut last = None;
    for a in &candidates {
        match TcpListener::bind(a) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(source) => Err(ServerError::Bind {
            addr: addr.to_owned(),
            source,
        }),
        None => Err(bad("resolves to no address".into())),
    }
}

fn worker(rx: &Mutex<Receiver<TcpStream>>, registry: &Registry, config: &ServerConfig) {
    loop {
        let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok(stream) = next else { return };
        // A broken connection is the client's problem; the worker moves on.
        let _ = serve(stream, registry, config);
    }
}

/// What a request head turned out to be.
#[derive(Debug, PartialEq)]
enum Head {
    Complete(usize),
    TooLarge,
    Incomplete,
}

fn head_end(buf: &[u8], max: usize) -> Head {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    match crlf.into_iter().chain(lf).min() {
        Some(end) if end <= max => Head::Complete(end),
        Some(_) => Head::TooLarge,
        None if buf.len() > max => Head::TooLarge,
        None => Head::Incomplete,
    }
}

fn serve(mut stream: TcpStream, registry: &Registry, config: &ServerConfig) -> io::Result<()> {
    let deadline = Instant::now() + config.request_timeout;
    stream.set_write_timeout(Some(config.request_timeout))?;
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let head = loop {
        match head_end(&buf, config.max_request_bytes) {
            Head::Complete(n) => break &buf[..n],
            Head::TooLarge => {
                return respond(&mut stream, 431, "Request Header Fields Too Large", &[], "")
            }
            Head::Incomplete => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return respond(&mut stream, 408, "Request Timeout", &[], "");
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(()), // closed before a full request: nobody to answer
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return respond(&mut stream, 408, "Request Timeout", &[], "")
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    let Some((method, path)) = parse_request_line(head) else {
        return respond(&mut stream, 400, "Bad Request", &[], "malformed request\n");
    };
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return respond(
            &mut stream,
            405,
            "Method Not Allowed",
            &[("Allow", "GET, HEAD")],
            "",
        );
    }
    let path = path.split('?').next().unwrap_or_default();
    if path != "/metrics" {
        return respond_with(
            &mut stream,
            404,
            "Not Found",
            &[("Content-Type", "text/plain; charset=utf-8")],
            "not found; try /metrics\n",
            head_only,
        );
    }
    let text = render_registry(registry);
    respond_with(
        &mut stream,
        200,
        "OK",
        &[("Content-Type", TEXT_FORMAT)],
        &text,
        head_only,
    )
}

/// `METHOD SP TARGET SP HTTP/1.x` with a token method and a target in origin form
/// (`/metrics`) or absolute form (`http://host:port/metrics`, which HTTP/1.1 servers must
/// accept; a proxy sends it). Returns the method and the path with its query.
fn parse_request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line_end = head.iter().position(|b| *b == b'\n')?;
    let line = std::str::from_utf8(&head[..line_end]).ok()?;
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    let target = origin_form(target)?;
    let ok = parts.next().is_none()
        && token(method)
        && target.starts_with('/')
        && !target.bytes().any(|b| b.is_ascii_control())
        && matches!(version, "HTTP/1.0" | "HTTP/1.1");
    ok.then_some((method, target))
}

/// The origin form of a request target: itself when it starts with `/`; for an absolute
/// form `http://authority/path?query`, the part from the path on (`/` when there is none).
fn origin_form(target: &str) -> Option<&str> {
    if target.starts_with('/') {
        return Some(target);
    }
    let scheme_end = target.find("://")?;
    let scheme = &target[..scheme_end];
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let rest = &target[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    if authority_end == 0 {
        return None; // no host
    }
    match &rest[authority_end..] {
        "" => Some("/"),
        path if path.starts_with('/') => Some(path),
        _ => None, // "http://host?query" has no path to serve
    }
}

fn respond(
    stream: &mut TcpStream,
    code: u16,
    reason: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> io::Result<()> {
    let mut hs = headers.to_vec();
    hs.push(("Content-Type", "text/plain; charset=utf-8"));
    respond_with(stream, code, reason, &hs, body, false)
}

fn respond_with(
    stream: &mut TcpStream,
    code: u16,
    reason: &str,
    headers: &[(&str, &str)],
    body: &str,
    head_only: bool,
) -> io::Result<()> {
    let mut out = format!("HTTP/1.1 {code} {reason}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&bytes)?;
    stream.flush()?;
    // Half-close, then drain briefly: closing with unread input (a request body we ignored)
    // would make the kernel send RST, and the client could lose the response.
    let _ = stream.shutdown(Shutdown::Write);
    // Bounded in bytes and in total time, so a client that keeps sending cannot hold the
    // worker here either.
    let until = Instant::now() + Duration::from_millis(200);
    let mut sink = [0u8; 1024];
    let mut drained = 0;
    while drained < 64 * 1024 {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads() {
        assert_eq!(
            head_end(b"GET / HTTP/1.1\r\n\r\nrest", 100),
            Head::Complete(18)
        );
        assert_eq!(head_end(b"GET / HTTP/1.0\n\n", 100), Head::Complete(16));
        assert_eq!(
            head_end(b"GET / HTTP/1.1\r\nHost: x", 100),
            Head::Incomplete
        );
        assert_eq!(head_end(&[b'a'; 101], 100), Head::TooLarge);
    }

    #[test]
    fn request_lines() {
        fn p(s: &str) -> Option<(&str, &str)> {
            parse_request_line(s.as_bytes())
        }
        assert_eq!(p("GET /metrics HTTP/1.1\r\n"), Some(("GET", "/metrics")));
        assert_eq!(
            p("HEAD /metrics?x=1 HTTP/1.0\n"),
            Some(("HEAD", "/metrics?x=1"))
        );
        assert_eq!(p("BREW /pot HTTP/1.1\r\n"), Some(("BREW", "/pot")));
        // Absolute form, as a proxy sends it.
        assert_eq!(
            p("GET http://127.0.0.1:9464/metrics?x=1 HTTP/1.1\r\n"),
            Some(("GET", "/metrics?x=1"))
        );
        assert_eq!(p("GET HTTP://host HTTP/1.1\r\n"), Some(("GET", "/")));
        for bad in [
            "GET /metrics\r\n",
            "GET  /metrics HTTP/1.1\r\n",
            "GET metrics HTTP/1.1\r\n",
            "GET /metrics HTTP/2\r\n",
            "G(T /metrics HTTP/1.1\r\n",
            "GET /metrics HTTP/1.1 extra\r\n",
            "GET ftp://host/metrics HTTP/1.1\r\n",
            "GET http:///metrics HTTP/1.1\r\n",
            "GET http://host?x HTTP/1.1\r\n",
            "\u{0}\u{1}\u{2}\r\n",
        ] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }
}
