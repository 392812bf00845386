//! [`ReportError`]: everything that can stop a report, each naming the file (or manifest key)
//! and what is wrong with it.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a run directory or a manifest could not be read.
///
/// Every variant that comes from a file carries its path; ndjson errors carry the 1-based line
/// number. The `Display` text is meant to be shown to a person as is.
#[derive(Debug)]
pub enum ReportError {
    /// The run directory does not exist or is not a directory.
    NotADirectory { path: PathBuf },
    /// The path exists but is a file, not a directory.
    NotADirectoryButFile { path: PathBuf },
    /// The run directory has no `shadow/summary.json`.
    MissingSummary { dir: PathBuf },
    /// `run.json` says the run is still `running`: it was killed or ended without finishing
    /// its artifacts, so what is there is partial.
    Unfinished { dir: PathBuf, run_id: String },
    /// `run.json` cannot be read.
    MalformedMarker { reason: String },
    /// `run.json` and `summary.json` name different runs: the summary is not this run's.
    StaleSummary {
        dir: PathBuf,
        marker_run_id: String,
        summary_run_id: String,
    },
    /// Counts in `summary.json` that no run can produce (more divergences than comparisons,
    /// parts that do not add up, values near overflow).
    ImpossibleCounts { path: PathBuf, reason: String },
    /// A file exists but could not be read.
    Io { path: PathBuf, source: io::Error },
    /// `summary.json` is not valid JSON, or does not have the fields of its schema.
    MalformedSummary {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A file has another `schema` than this version reads (`found` is `None` when the field
    /// is missing or not a string). `line` is set for ndjson files.
    UnsupportedSchema {
        path: PathBuf,
        line: Option<u64>,
        found: Option<String>,
        expected: &'static str,
    },
    /// A line of `divergences.ndjson` (other than a torn last line) cannot be read.
    MalformedLine {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    /// The rollout manifest is not valid TOML or lacks what the gates need.
    Manifest { reason: String },
    /// `--prometheus`: the server cannot be reached, did not answer as Prometheus, refused
    /// the query, or holds no runs in the window.
    Prometheus { url: String, reason: String },
    /// Two run directories carry the same run id but different summaries: not copies of one
    /// run, so the evidence contradicts itself.
    ConflictingRuns {
        run_id: String,
        first: PathBuf,
        second: PathBuf,
    },
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::NotADirectory { path } => {
                write!(
                    f,
                    "{}: not a run directory (no such directory)",
                    path.display()
                )
            }
            ReportError::NotADirectoryButFile { path } => {
                write!(
                    f,
                    "{}: not a run directory (not a directory)",
                    path.display()
                )
            }
            ReportError::Unfinished { dir, run_id } => write!(
                f,
                "{}: run {run_id} did not finish (run.json still says \"running\": the \
                 recorder was killed or the process ended before the stop); its artifacts are \
                 partial and are not reported",
                dir.display()
            ),
            ReportError::MalformedMarker { reason } => write!(f, "{reason}"),
            ReportError::StaleSummary {
                dir,
                marker_run_id,
                summary_run_id,
            } => write!(
                f,
                "{}: shadow/summary.json is from run {summary_run_id}, but the directory holds \
                 run {marker_run_id} (run.json): a stale summary is not reported",
                dir.display()
            ),
            ReportError::ImpossibleCounts { path, reason } => {
                write!(f, "{}: a broken run: {reason}", path.display())
            }
            ReportError::MissingSummary { dir } => write!(
                f,
                "{}: no shadow/summary.json; was the run recorded with --shadow-compare, \
                 and did it finish?",
                dir.display()
            ),
            ReportError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            ReportError::MalformedSummary { path, source } => {
                write!(f, "{}: not a valid summary: {source}", path.display())
            }
            ReportError::UnsupportedSchema {
                path,
                line,
                found,
                expected,
            } => {
                write!(f, "{}", path.display())?;
                if let Some(line) = line {
                    write!(f, ": line {line}")?;
                }
                match found {
                    Some(found) => write!(
                        f,
                        ": schema {found:?} is not supported (this ct-reports reads {expected:?})"
                    ),
                    None => write!(f, ": no \"schema\" string (expected {expected:?})"),
                }
            }
            ReportError::MalformedLine { path, line, reason } => {
                write!(f, "{}: line {line}: {reason}", path.display())
            }
            ReportError::Manifest { reason } => write!(f, "rollout manifest: {reason}"),
            ReportError::Prometheus { url, reason } => write!(f, "prometheus {url}: {reason}"),
            ReportError::ConflictingRuns {
                run_id,
                first,
                second,
            } => write!(
                f,
                "{} and {} both hold run {run_id} but their summaries differ: copies of one \
                 run are identical, so one of them is not what it claims to be; remove the \
                 wrong one",
                first.display(),
                second.display()
            ),
        }
    }
}

impl std::error::Error for ReportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReportError::Io { source, .. } => Some(source),
            ReportError::MalformedSummary { source, .. } => Some(source),
            _ => None,
        }
    }
}
