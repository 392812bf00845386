//! The recorder's own log: `tracing` events on stderr (or `--log-file`), never on the
//! program's stdout.
//!
//! Which events show, highest precedence first (docs/logging.md):
//! 1. `--log-level LEVEL` on the command line;
//! 2. `CODETRACER_LOG_LEVEL=LEVEL`;
//! 3. `RUST_LOG` (full `tracing` directives, e.g. `ct_shadow=trace,ct_recorder=debug`);
//! 4. `warn`.
//!
//! The tool's own settings beat `RUST_LOG` because `RUST_LOG` is often left set in a shell
//! for other Rust programs, and the recorder runs inside someone else's program. A level
//! (1, 2, 4) applies to the recorder's crates; other crates stay at `warn`.
//!
//! Colour only when stderr is a terminal and `NO_COLOR` is unset or empty (no-color.org);
//! never in a log file.

use std::io::IsTerminal;
use std::path::Path;

use tracing_subscriber::EnvFilter;

use crate::cli::LogLevel;

/// Where the recorder's log level came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LevelSource {
    /// Neither `--log-level` nor `CODETRACER_LOG_LEVEL`: `RUST_LOG`, else `warn`.
    #[default]
    Default,
    /// `CODETRACER_LOG_LEVEL`.
    Environment,
    /// `--log-level`.
    CommandLine,
}

/// The recorder's crates, which a plain level applies to.
const CRATES: [&str; 3] = ["ct_recorder", "ct_shadow", "ct_reports"];

/// The filter the precedence above gives; `rust_log` is the value of `RUST_LOG`.
pub fn filter(
    level: LogLevel,
    source: LevelSource,
    rust_log: Option<&str>,
) -> Result<EnvFilter, String> {
    let rust_log = rust_log.map(str::trim).filter(|s| !s.is_empty());
    if let (LevelSource::Default, Some(directives)) = (source, rust_log) {
        return EnvFilter::builder()
            .parse(directives)
            .map_err(|e| format!("RUST_LOG={directives:?} is not a valid log filter: {e}"));
    }
    let l = level.as_filter();
    let others = if level == LogLevel::Error {
        "error"
    } else {
        "warn"
    };
    let mut directives = vec![others.to_owned()];
    directives.extend(CRATES.iter().map(|c| format!("{c}={l}")));
    EnvFilter::builder()
        .parse(directives.join(","))
        .map_err(|e| format!("log level {l}: {e}"))
}

/// Whether log lines on stderr get ANSI colours.
pub fn colour_on_stderr(no_color: Option<&str>) -> bool {
    std::io::stderr().is_terminal() && !matches!(no_color, Some(v) if !v.is_empty())
}

/// Installs the subscriber. A second session in one process keeps the first one.
/// stderr for the recorder's log. A write that fails (closed pipe, full disk) is dropped:
/// the subscriber would otherwise report it with `eprintln!`, which panics on that same
/// stderr, in the middle of the stop sequence (see docs/recording.md, "The run directory").
struct QuietStderr;

impl std::io::Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

pub fn init(level: LogLevel, source: LevelSource, file: Option<&Path>) -> Result<(), String> {
    let filter = filter(level, source, std::env::var("RUST_LOG").ok().as_deref())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .without_time();
    let result = match file {
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open the log file '{}': {e}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(f))
                .try_init()
        }
        None => builder
            .with_ansi(colour_on_stderr(std::env::var("NO_COLOR").ok().as_deref()))
            .with_writer(|| QuietStderr)
            .try_init(),
    };
    let _ = result;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_cli_then_codetracer_then_rust_log_then_warn() {
        let cli = filter(LogLevel::Debug, LevelSource::CommandLine, Some("trace")).unwrap();
        assert!(cli.to_string().contains("ct_recorder=debug"), "{cli}");
        let env = filter(LogLevel::Info, LevelSource::Environment, Some("trace")).unwrap();
        assert!(env.to_string().contains("ct_shadow=info"), "{env}");
        let rust = filter(
            LogLevel::Warn,
            LevelSource::Default,
            Some("ct_shadow=trace"),
        )
        .unwrap();
        assert_eq!(rust.to_string(), "ct_shadow=trace");
        let default = filter(LogLevel::Warn, LevelSource::Default, Some("  ")).unwrap();
        assert!(
            default.to_string().contains("ct_recorder=warn"),
            "{default}"
        );
    }

    #[test]
    fn a_bad_rust_log_is_an_error_naming_it() {
        let e = filter(LogLevel::Warn, LevelSource::Default, Some("ct_shadow=loud")).unwrap_err();
        assert!(e.starts_with("RUST_LOG=\"ct_shadow=loud\""), "{e}");
    }
}
