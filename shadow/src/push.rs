//! Pushing the final metrics of a run to a Prometheus Pushgateway (`--metrics-push URL`).
//!
//! A short batch run ends before any Prometheus scrapes it, so at run end the recorder `PUT`s
//! the whole registry to `URL/metrics/job/<job>/run_id/<run_id>`. `PUT` replaces the group, so
//! pushing again for the same run is harmless. Each run is its own group: the Pushgateway
//! keeps groups until they are deleted, so whoever aggregates runs should call [`delete`] for
//! runs it has consumed (or run the Pushgateway with a short-lived store); the recorder itself
//! never deletes.
//!
//! Plain HTTP/1.1 through `ureq` (built without TLS): `http://host[:port][/prefix]` (the
//! scheme may be left out). `https://` and credentials in the URL are refused with a clear
//! error rather than sent in the clear; put a local proxy in front if the gateway needs TLS.
//! Grouping values made only of URL-unreserved characters go as they are; anything else (a
//! `/`, a space, an empty value) uses the Pushgateway's `label@base64/<urlsafe base64>` form.
//! A refusal (non-2xx) is reported with its status and the start of the gateway's message.
//! Timeouts: 5 s to resolve and to connect, 10 s for each send or receive step; no redirects.

use std::io;
use std::time::Duration;

use base64::Engine as _;
use prometheus::Registry;

use crate::metrics::{render_registry, TEXT_FORMAT};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const IO_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// `host[:port]` as written: where to connect (port 80 when none is given).
    host_header: String,
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
        Ok(Gateway {
            host_header: authority.to_owned(),
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
        let target = format!("http://{}{path}", self.host_header);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_resolve(Some(CONNECT_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_send_request(Some(IO_TIMEOUT))
            .timeout_send_body(Some(IO_TIMEOUT))
            .timeout_recv_response(Some(IO_TIMEOUT))
            .timeout_recv_body(Some(IO_TIMEOUT))
            .user_agent(concat!("ct-recorder/", env!("CARGO_PKG_VERSION")))
            // A refusal is an answer to report with its body, not a transport error.
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        let sent = match method {
            "PUT" => agent
                .put(&target)
                .header("Content-Type", TEXT_FORMAT)
                .send(body),
            "DELETE" => agent.delete(&target).call(),
            other => unreachable!("no {other} requests are made"),
        };
        let mut response = sent.map_err(|e| classify(&url, e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .unwrap_or_default();
        Err(PushError::Status {
            url,
            status,
            body: text.chars().take(500).collect(),
        })
    }
}

/// A transport failure: before a connection (nothing was sent) is `Unreachable`, after it
/// `Io`.
fn classify(url: &str, e: ureq::Error) -> PushError {
    use ureq::Timeout;
    let unreachable = |source| PushError::Unreachable {
        url: url.to_owned(),
        source,
    };
    match e {
        ureq::Error::HostNotFound => unreachable(io::Error::new(
            io::ErrorKind::NotFound,
            "the host name does not resolve",
        )),
        ureq::Error::ConnectionFailed => unreachable(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "the connection failed",
        )),
        ureq::Error::Timeout(t @ (Timeout::Resolve | Timeout::Connect)) => unreachable(
            io::Error::new(io::ErrorKind::TimedOut, format!("{t} timed out")),
        ),
        ureq::Error::Io(source)
            if matches!(
                source.kind(),
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::AddrNotAvailable
                    | io::ErrorKind::NotFound
            ) =>
        {
            unreachable(source)
        }
        ureq::Error::Io(source) => PushError::Io {
            url: url.to_owned(),
            source,
        },
        other => PushError::Io {
            url: url.to_owned(),
            source: io::Error::other(other.to_string()),
        },
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
        assert_eq!(g.host_header, "127.0.0.1:9091");
        assert_eq!(
            g.group_path("ct-record", "r1"),
            "/metrics/job/ct-record/run_id/r1"
        );
        let g = Gateway::parse("gw.internal/pgw/").unwrap();
        assert_eq!(g.host_header, "gw.internal");
        assert_eq!(g.group_path("j", "r"), "/pgw/metrics/job/j/run_id/r");
        let g = Gateway::parse("http://[::1]:9091").unwrap();
        assert_eq!(g.host_header, "[::1]:9091");
        let g = Gateway::parse("http://[::1]").unwrap();
        assert_eq!(g.host_header, "[::1]");
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
