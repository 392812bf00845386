//! Pushing the final metrics of a run to a Prometheus Pushgateway (`--metrics-push URL`).
//!
//! A short batch run ends before any Prometheus scrapes it, so at run end the recorder `PUT`s
//! the whole registry to `URL/metrics/job/<job>/run_id/<run_id>`. `PUT` replaces the group, so
//! pushing again for the same run is harmless. Each run is its own group: the Pushgateway
//! keeps groups until they are deleted, so whoever aggregates runs should call [`delete`] for
//! runs it has consumed (or run the Pushgateway with a short-lived store); the recorder itself
//! never deletes.
//!
//! Plain HTTP/1.1 over a std `TcpStream`: `http://host[:port][/prefix]` (the scheme may be
//! left out). `https://` and credentials in the URL are refused with a clear error rather than
//! sent in the clear; put a local proxy in front if the gateway needs TLS. Grouping values made
//! only of URL-unreserved characters go as they are; anything else (a `/`, a space, an empty
//! value) uses the Pushgateway's `label@base64/<urlsafe base64>` form. The body is sent after
//! `100 Continue` (or 2 s of silence), so a refusal is read back intact instead of being lost
//! to a connection reset. Timeouts: 5 s to connect, 10 s for each read or write.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use base64::Engine as _;
use prometheus::Registry;

use crate::metrics::{render_registry, TEXT_FORMAT};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for `100 Continue` before sending the body regardless.
const CONTINUE_WAIT: Duration = Duration::from_secs(2);

/// Why a push or delete failed.
#[derive(Debug)]
pub enum PushError {
    /// The URL is not `http://host[:port][/prefix]`.
    BadUrl { url: String, reason: String },
    /// No connection could be made (refused, unresolvable host, timeout).
    Unreachable { url: String, source: io::Error },
    /// The connection broke during the exchange.
    Io { url: String, source: io::Error },
    /// The Pushgateway answered with an error status.
    Status {
        url: String,
        status: u16,
        body: String,
    },
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::BadUrl { url, reason } => {
                write!(
                    f,
                    "--metrics-push {url:?} is not a usable Pushgateway URL: {reason}"
                )
            }
            PushError::Unreachable { url, source } => {
                write!(f, "Pushgateway at {url} is unreachable: {source}")
            }
            PushError::Io { url, source } => {
                write!(f, "talking to the Pushgateway at {url} failed: {source}")
            }
            PushError::Status { url, status, body } => {
                write!(f, "Pushgateway at {url} answered {status}: {}", body.trim())
            }
        }
    }
}

impl std::error::Error for PushError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PushError::Unreachable { source, .. } | PushError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A parsed Pushgateway base URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gateway {
    /// `host[:port]` as written, for the `Host` header.
    host_header: String,
    /// `host:port`, for connecting.
    connect_to: String,
    /// Path prefix without a trailing `/` (empty for none).
    prefix: String,
    /// The URL as given, for messages.
    url: String,
}

impl Gateway {
    /// Parses `http://host[:port][/prefix]` (or the same without `http://`).
    pub fn parse(url: &str) -> Result<Gateway, PushError> {
        let bad = |reason: &str| PushError::BadUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let t = url.trim();
        let rest = if let Some(r) = t.strip_prefix("http://") {
            r
        } else if t.starts_with("https://") {
            return Err(bad(
                "https is not supported; use http:// (a local TLS proxy can bridge)",
            ));
        } else if t.contains("://") {
            return Err(bad("only http:// URLs are supported"));
        } else {
            t
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if path.contains(['?', '#']) {
            return Err(bad("a query string or fragment has no meaning here"));
        }
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        if authority.contains('@') {
            return Err(bad("credentials in the URL are not supported"));
        }
        let has_port = match authority.rfind(']') {
            Some(close) => authority[close..].contains(':'),
            None => authority.contains(':'),
        };
        let connect_to = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Gateway {
            host_header: authority.to_owned(),
            connect_to,
            prefix: path.trim_end_matches('/').to_owned(),
            url: t.to_owned(),
        })
    }

    /// The group path for a run: `PREFIX/metrics/job/<job>/run_id/<run_id>`.
    pub fn group_path(&self, job: &str, run_id: &str) -> String {
        format!(
            "{}/metrics/{}/{}",
            self.prefix,
            grouping_segment("job", job),
            grouping_segment("run_id", run_id)
        )
    }

    fn request(&self, method: &str, path: &str, body: &[u8]) -> Result<(), PushError> {
        let url = format!(
            "{}{}",
            self.url.trim_end_matches('/'),
            &path[self.prefix.len()..]
        );
        let unreachable = |source| PushError::Unreachable {
            url: url.clone(),
            source,
        };
        let addrs: Vec<SocketAddr> = self
            .connect_to
            .to_socket_addrs()
            .map_err(unreachable)?
            .collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "host resolves to no address");
        let mut stream = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, CONNECT_TIMEOUT) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let mut stream = stream.ok_or_else(|| unreachable(last))?;
        let io_err = |source| PushError::Io {
            url: url.clone(),
            source,
        };
        stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io_err)?;
        stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io_err)?;
        // `Expect: 100-continue`: a gateway that rejects the request answers before reading
        // the body and closes; had we sent the body anyway, the unread bytes would make its
        // kernel reset the connection and the error response would be lost.
        let expect = if body.is_empty() {
            ""
        } else {
            "Expect: 100-continue\r\n"
        };
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ct-recorder/{}\r\n\
             Content-Type: {TEXT_FORMAT}\r\nContent-Length: {}\r\n{expect}Connection: close\r\n\r\n",
            self.host_header,
            env!("CARGO_PKG_VERSION"),
            body.len()
        );
        stream.write_all(head.as_bytes()).map_err(io_err)?;
        let mut reply = Vec::new();
        if !body.is_empty() {
            let interim = read_interim(&mut stream, &mut reply).map_err(io_err)?;
            if interim {
                stream.write_all(body).map_err(io_err)?;
            }
        }
        stream.flush().map_err(io_err)?;
        stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io_err)?;
        if let Err(e) = stream.read_to_end(&mut reply) {
            // A reset after a complete status line still tells us the outcome.
            if !(e.kind() == io::ErrorKind::ConnectionReset && reply.starts_with(b"HTTP/")) {
                return Err(io_err(e));
            }
        }
        let text = String::from_utf8_lossy(&reply);
        let status: u16 = text
            .lines()
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| {
                io_err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "not an HTTP response",
                ))
            })?;
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body = text
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .chars()
            .take(500)
            .collect();
        Err(PushError::Status { url, status, body })
    }
}

/// Waits (up to [`CONTINUE_WAIT`]) for the server's answer to `Expect: 100-continue`. Returns
/// whether to send the body: yes after `100 Continue` or silence (servers may ignore
/// `Expect`), no when a final response has begun; its bytes are left in `reply`.
fn read_interim(stream: &mut TcpStream, reply: &mut Vec<u8>) -> io::Result<bool> {
    stream.set_read_timeout(Some(CONTINUE_WAIT))?;
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = reply.windows(4).position(|w| w == b"\r\n\r\n") {
            if reply.starts_with(b"HTTP/1.1 100") || reply.starts_with(b"HTTP/1.0 100") {
                reply.drain(..end + 4);
                return Ok(true);
            }
            return Ok(false);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => reply.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(reply.is_empty())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// `name/value`, or `name@base64/<urlsafe base64>` when `value` is empty or has characters
/// other than URL-unreserved ones.
fn grouping_segment(name: &str, value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if plain {
        format!("{name}/{value}")
    } else if value.is_empty() {
        format!("{name}@base64/=")
    } else {
        let enc = base64::engine::general_purpose::URL_SAFE.encode(value.as_bytes());
        format!("{name}@base64/{enc}")
    }
}

/// Pushes (HTTP `PUT`) every metric of `registry` as the group `job`/`run_id`, replacing
/// what that group held.
pub fn push(url: &str, job: &str, run_id: &str, registry: &Registry) -> Result<(), PushError> {
    let gw = Gateway::parse(url)?;
    let body = render_registry(registry);
    gw.request("PUT", &gw.group_path(job, run_id), body.as_bytes())
}

/// Deletes the group `job`/`run_id` from the Pushgateway (for cleanup once a run's metrics
/// have been consumed; deleting a group that does not exist succeeds).
pub fn delete(url: &str, job: &str, run_id: &str) -> Result<(), PushError> {
    let gw = Gateway::parse(url)?;
    gw.request("DELETE", &gw.group_path(job, run_id), b"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let g = Gateway::parse("http://127.0.0.1:9091").unwrap();
        assert_eq!(g.connect_to, "127.0.0.1:9091");
        assert_eq!(
            g.group_path("ct-record", "r1"),
            "/metrics/job/ct-record/run_id/r1"
        );
        let g = Gateway::parse("gw.internal/pgw/").unwrap();
        assert_eq!(g.connect_to, "gw.internal:80");
        assert_eq!(g.host_header, "gw.internal");
        assert_eq!(g.group_path("j", "r"), "/pgw/metrics/job/j/run_id/r");
        let g = Gateway::parse("http://[::1]:9091").unwrap();
        assert_eq!(g.connect_to, "[::1]:9091");
        let g = Gateway::parse("http://[::1]").unwrap();
        assert_eq!(g.connect_to, "[::1]:80");
        for bad in [
            "https://gw:9091",
            "ftp://gw",
            "http://",
            "http://user:pw@gw:9091",
            "http://gw:9091/?x=1",
        ] {
            assert!(
                matches!(Gateway::parse(bad), Err(PushError::BadUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn grouping_values_that_are_not_plain_go_as_base64() {
        assert_eq!(
            grouping_segment("run_id", "2024-05-01T10.00"),
            "run_id/2024-05-01T10.00"
        );
        assert_eq!(grouping_segment("run_id", "a/b"), "run_id@base64/YS9i");
        assert_eq!(grouping_segment("run_id", ""), "run_id@base64/=");
        assert_eq!(grouping_segment("job", "my job"), "job@base64/bXkgam9i");
    }
}
