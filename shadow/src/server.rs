//! The `/metrics` endpoint (`ct-record --metrics-addr HOST:PORT`).
//!
//! One thread runs an event loop over non-blocking sockets (readiness from [`mio`], the
//! polling layer under tokio): it accepts, reads requests, answers and closes, many
//! connections at once. No connection ever holds a thread, so idle or trickling clients
//! cannot starve a scrape: with hundreds of them open, a scrape is answered as soon as its
//! request has arrived. (The previous design, a pool of 8 blocking workers, was stalled by 8
//! idle sockets; an HTTP framework would need an async runtime and dozens of crates for one
//! GET route, and the thread-per-connection ones have the same weakness.)
//!
//! Behaviour:
//! - `GET /metrics` (any query string): 200, the registry in the text format,
//!   `Content-Type: text/plain; version=0.0.4`.
//! - `HEAD /metrics`: the same headers, no body (HEAD is supported on every path).
//! - any other path: 404; any other method: 405 with `Allow: GET, HEAD`.
//! - the target may be in origin form (`/metrics`) or, as HTTP/1.1 requires servers to
//!   accept, in absolute form (`http://host:port/metrics`);
//! - a request line that is not `METHOD TARGET HTTP/1.x`: 400, as soon as the bytes received
//!   cannot begin one (no need to wait for the end of the head); headers over 8 KiB: 431;
//!   a request not complete within the request timeout (5 s, a whole-request deadline, so a
//!   client trickling bytes cannot extend it): 408.
//! - a client that half-closes after a complete request line (no blank line) is answered
//!   as if the head had ended; a half-closed partial request line gets 400.
//! - every response closes the connection.
//!
//! Limits: at most [`ServerConfig::max_connections`] connections (1024) are held at once,
//! each with at most `max_request_bytes` buffered, so memory stays bounded (about 8 MiB at
//! worst); when full, the oldest connection still waiting for its request is closed to make
//! room for the new one. A response is written within the request timeout or dropped.
//!
//! The server only reads the Prometheus registry; it never needs the GIL or anything else from
//! Python. [`MetricsServer::shutdown`] (or dropping the server) stops accepting, answers the
//! requests that have fully arrived, closes the rest, and joins the thread.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use prometheus::Registry;

use crate::metrics::{render_registry, TEXT_FORMAT};

/// Tuning of the server; [`ServerConfig::default`] suits a recorder.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Connections held open at once (the oldest waiting one is closed beyond).
    pub max_connections: usize,
    /// Deadline for receiving a whole request (and, separately, for writing the answer).
    pub request_timeout: Duration,
    /// Largest accepted request head (request line and headers).
    pub max_request_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 1024,
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
    /// The server thread (or its poller) could not be started.
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
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Connection `i` has token `FIRST_CONN + i`.
const FIRST_CONN: usize = 2;

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
        let std_listener = bind(addr)?;
        let local = std_listener
            .local_addr()
            .map_err(|source| ServerError::Bind {
                addr: addr.to_owned(),
                source,
            })?;
        std_listener
            .set_nonblocking(true)
            .map_err(ServerError::Spawn)?;
        let mut listener = TcpListener::from_std(std_listener);
        let poll = Poll::new().map_err(ServerError::Spawn)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(ServerError::Spawn)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(ServerError::Spawn)?);
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let thread = std::thread::Builder::new()
            .name("ct-metrics".into())
            .spawn(move || {
                let mut server = EventLoop {
                    poll,
                    listener: Some(listener),
                    registry,
                    config,
                    conns: Vec::new(),
                    free: Vec::new(),
                    open: 0,
                    accept_retry_at: None,
                };
                server.run(&stop);
            })
            .map_err(ServerError::Spawn)?;
        Ok(MetricsServer {
            addr: local,
            stopping,
            waker,
            thread: Some(thread),
        })
    }

    /// The address actually bound (with the port picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, answers the requests that have fully arrived, closes the other
    /// connections and joins the server thread. Answers still being written get at most the
    /// request timeout.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a connection is doing.
enum Phase {
    /// Receiving the request head.
    Reading { buf: Vec<u8> },
    /// Sending the response (`out[sent..]` is left).
    Writing { out: Vec<u8>, sent: usize },
    /// Response sent and the write side closed; reading what the client still sends, so that
    /// closing with unread input does not make the kernel reset the connection (the client
    /// could lose the response). Bounded in bytes and time.
    Draining { drained: usize },
}

struct Conn {
    stream: TcpStream,
    phase: Phase,
    accepted: Instant,
    deadline: Instant,
}

/// How long and how much a finished connection is drained before it is closed.
const DRAIN_TIME: Duration = Duration::from_millis(200);
const DRAIN_BYTES: usize = 64 * 1024;

struct EventLoop {
    poll: Poll,
    listener: Option<TcpListener>,
    registry: Registry,
    config: ServerConfig,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    open: usize,
    /// After an accept error (out of descriptors...): when to try again.
    accept_retry_at: Option<Instant>,
}

impl EventLoop {
    fn run(&mut self, stopping: &AtomicBool) {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = self.next_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return; // the poller itself failed: nothing left to serve with
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {}
                    Token(t) => self.advance(t - FIRST_CONN),
                }
            }
            if self.accept_retry_at.is_some_and(|at| at <= Instant::now()) {
                self.accept_retry_at = None;
                self.accept_all();
            }
            self.expire();
            if stopping.load(Ordering::SeqCst) {
                self.wind_down();
                return;
            }
        }
    }

    fn next_timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        self.conns
            .iter()
            .flatten()
            .map(|c| c.deadline)
            .chain(self.accept_retry_at)
            .min()
            .map(|d| d.saturating_duration_since(now))
    }

    fn accept_all(&mut self) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    self.admit(stream);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // Out of descriptors and the like: try again shortly instead of spinning.
                    self.accept_retry_at = Some(Instant::now() + Duration::from_millis(20));
                    return;
                }
            }
        }
    }

    fn admit(&mut self, mut stream: TcpStream) {
        if self.open >= self.config.max_connections.max(1) && !self.evict_oldest_waiting() {
            return; // every slot is busy answering: the new connection is closed
        }
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        if self
            .poll
            .registry()
            .register(&mut stream, Token(FIRST_CONN + slot), Interest::READABLE)
            .is_err()
        {
            self.free.push(slot);
            return;
        }
        let now = Instant::now();
        self.conns[slot] = Some(Conn {
            stream,
            phase: Phase::Reading {
                buf: Vec::with_capacity(512),
            },
            accepted: now,
            deadline: now + self.config.request_timeout,
        });
        self.open += 1;
        // Data may already be there (edge-triggered: no event would say so again).
        self.advance(slot);
    }

    /// Closes the connection that has waited longest for its request; false if none waits.
    fn evict_oldest_waiting(&mut self) -> bool {
        let oldest = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (i, c)))
            .filter(|(_, c)| matches!(c.phase, Phase::Reading { .. }))
            .min_by_key(|(_, c)| c.accepted)
            .map(|(i, _)| i);
        match oldest {
            Some(i) => {
                self.close(i);
                true
            }
            None => false,
        }
    }

    fn close(&mut self, slot: usize) {
        if let Some(mut conn) = self.conns[slot].take() {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.free.push(slot);
            self.open -= 1;
        }
    }

    /// Moves a connection on as far as its socket allows.
    fn advance(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let step = match &mut conn.phase {
            Phase::Reading { buf } => read_request(
                &mut conn.stream,
                buf,
                &self.registry,
                self.config.max_request_bytes,
            ),
            Phase::Writing { out, sent } => write_response(&mut conn.stream, out, sent),
            Phase::Draining { drained } => drain(&mut conn.stream, drained),
        };
        match step {
            Step::Wait => {}
            Step::Close => self.close(slot),
            Step::Respond(out) => {
                conn.phase = Phase::Writing { out, sent: 0 };
                conn.deadline = Instant::now() + self.config.request_timeout;
                let token = Token(FIRST_CONN + slot);
                let ok = self
                    .poll
                    .registry()
                    .reregister(&mut conn.stream, token, Interest::WRITABLE)
                    .is_ok();
                if ok {
                    self.advance(slot);
                } else {
                    self.close(slot);
                }
            }
            Step::Sent => {
                let _ = conn.stream.shutdown(Shutdown::Write);
                conn.phase = Phase::Draining { drained: 0 };
                conn.deadline = Instant::now() + DRAIN_TIME;
                let token = Token(FIRST_CONN + slot);
                let ok = self
                    .poll
                    .registry()
                    .reregister(&mut conn.stream, token, Interest::READABLE)
                    .is_ok();
                if ok {
                    self.advance(slot);
                } else {
                    self.close(slot);
                }
            }
        }
    }

    /// Deadlines: a request not complete in time gets 408; an answer not written in time, or
    /// a drain that ran its course, is closed.
    fn expire(&mut self) {
        let now = Instant::now();
        for slot in 0..self.conns.len() {
            let Some(conn) = self.conns[slot].as_mut() else {
                continue;
            };
            if conn.deadline > now {
                continue;
            }
            match conn.phase {
                Phase::Reading { .. } => {
                    conn.phase = Phase::Writing {
                        out: response(408, "Request Timeout", &[], "", false),
                        sent: 0,
                    };
                    conn.deadline = now + self.config.request_timeout;
                    let token = Token(FIRST_CONN + slot);
                    if self
                        .poll
                        .registry()
                        .reregister(&mut conn.stream, token, Interest::WRITABLE)
                        .is_ok()
                    {
                        self.advance(slot);
                    } else {
                        self.close(slot);
                    }
                }
                Phase::Writing { .. } | Phase::Draining { .. } => self.close(slot),
            }
        }
    }

    /// At shutdown: no more accepting; a last read for every waiting connection (a request
    /// that has arrived is answered), the rest are closed; answers being written get their
    /// deadline.
    fn wind_down(&mut self) {
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        for slot in 0..self.conns.len() {
            self.advance(slot);
            if let Some(Conn {
                phase: Phase::Reading { .. },
                ..
            }) = self.conns[slot]
            {
                self.close(slot);
            }
        }
        let mut events = Events::with_capacity(64);
        while self.open > 0 {
            let timeout = self.next_timeout();
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
            for event in events.iter() {
                let Token(t) = event.token();
                if t >= FIRST_CONN {
                    self.advance(t - FIRST_CONN);
                }
            }
            self.expire();
        }
    }
}

/// What a connection does next.
enum Step {
    /// Wait for the socket.
    Wait,
    /// Send these bytes.
    Respond(Vec<u8>),
    /// The response is out: half-close and drain.
    Sent,
    /// Close now.
    Close,
}

fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    registry: &Registry,
    max: usize,
) -> Step {
    let mut chunk = [0u8; 2048];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => {
                // Half-closed (or closed) by the client.
                if buf.is_empty() {
                    return Step::Close; // left without a word: nobody to answer
                }
                return match parse_request_line(buf) {
                    Some((method, target)) => Step::Respond(answer(method, target, registry)),
                    None => Step::Respond(bad_request()),
                };
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                match head_end(buf, max) {
                    Head::Complete(end) => {
                        return Step::Respond(match parse_request_line(&buf[..end]) {
                            Some((method, target)) => answer(method, target, registry),
                            None => bad_request(),
                        })
                    }
                    Head::TooLarge => {
                        return Step::Respond(response(
                            431,
                            "Request Header Fields Too Large",
                            &[],
                            "",
                            false,
                        ))
                    }
                    Head::Incomplete if !request_line_may_follow(buf) => {
                        return Step::Respond(bad_request())
                    }
                    Head::Incomplete => {}
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A broken connection is the client's problem; the server moves on.
            Err(_) => return Step::Close,
        }
    }
}

fn write_response(stream: &mut TcpStream, out: &[u8], sent: &mut usize) -> Step {
    while *sent < out.len() {
        match stream.write(&out[*sent..]) {
            Ok(0) => return Step::Close,
            Ok(n) => *sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Step::Close,
        }
    }
    Step::Sent
}

fn drain(stream: &mut TcpStream, drained: &mut usize) -> Step {
    let mut sink = [0u8; 2048];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return Step::Close,
            Ok(n) => {
                *drained += n;
                if *drained >= DRAIN_BYTES {
                    return Step::Close;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Step::Close,
        }
    }
}

fn bad_request() -> Vec<u8> {
    response(400, "Bad Request", &[], "malformed request\n", false)
}

/// The answer to a well-formed request line.
fn answer(method: &str, target: &str, registry: &Registry) -> Vec<u8> {
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return response(
            405,
            "Method Not Allowed",
            &[("Allow", "GET, HEAD")],
            "",
            false,
        );
    }
    let path = target.split('?').next().unwrap_or_default();
    if path != "/metrics" {
        return response(
            404,
            "Not Found",
            &[],
            "not found; try /metrics\n",
            head_only,
        );
    }
    let text = render_registry(registry);
    response(
        200,
        "OK",
        &[("Content-Type", TEXT_FORMAT)],
        &text,
        head_only,
    )
}

/// A whole response. Without a `Content-Type` in `headers`, the body is plain UTF-8 text.
fn response(
    code: u16,
    reason: &str,
    headers: &[(&str, &str)],
    body: &str,
    head_only: bool,
) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {code} {reason}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("Content-Type"))
    {
        out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(body.as_bytes());
    }
    bytes
}

/// Whether the bytes received so far can still begin a valid request line
/// (`METHOD SP TARGET SP HTTP/1.x CRLF`). False means 400 at once: waiting for the end of
/// the head could not change the answer.
fn request_line_may_follow(buf: &[u8]) -> bool {
    let line_end = buf.iter().position(|b| *b == b'\n');
    if line_end.is_some() {
        // A whole line: judged as it is.
        return parse_request_line(buf).is_some();
    }
    let mut parts = buf.splitn(3, |b| *b == b' ');
    let method = parts.next().unwrap_or_default();
    if !method.iter().all(|b| is_tchar(*b)) {
        return false;
    }
    let Some(target) = parts.next() else {
        return true;
    };
    if method.is_empty() || target.iter().any(|b| b.is_ascii_control()) {
        return false;
    }
    let Some(version) = parts.next() else {
        return true;
    };
    if target.is_empty() {
        return false;
    }
    let version = version.strip_suffix(b"\r").unwrap_or(version);
    let full: &[u8] = b"HTTP/1.";
    if version.len() <= full.len() {
        full.starts_with(version)
    } else {
        version.starts_with(full)
            && version.len() == full.len() + 1
            && matches!(version[7], b'0' | b'1')
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn bind(addr: &str) -> Result<std::net::TcpListener, ServerError> {
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
        match std::net::TcpListener::bind(a) {
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

/// `METHOD SP TARGET SP HTTP/1.x` with a token method and a target in origin form
/// (`/metrics`) or absolute form (`http://host:port/metrics`, which HTTP/1.1 servers must
/// accept; a proxy sends it). Returns the method and the path with its query.
fn parse_request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line_end = head.iter().position(|b| *b == b'\n')?;
    let line = std::str::from_utf8(&head[..line_end]).ok()?;
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let token = |s: &str| !s.is_empty() && s.bytes().all(is_tchar);
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
