//! Reading one run directory: [`load_run`] and [`RunReport`].

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use ct_shadow::artifacts::{DIVERGENCES_FILE, SHADOW_DIR, SUMMARY_FILE};
use ct_shadow::run_marker::{RunMarker, RunState, MARKER_SCHEMA};
use ct_shadow::summary::SUMMARY_SCHEMA;
use ct_shadow::{Divergence, Summary, DIVERGENCE_SCHEMA, DIVERGENCE_SCHEMAS_READ};
use serde::Serialize;

use crate::error::ReportError;

/// The shadow artifacts of one run, as read from disk.
#[derive(Clone, Debug, PartialEq)]
pub struct RunReport {
    /// The run directory, as given to [`load_run`].
    pub dir: PathBuf,
    /// `shadow/summary.json`: the authoritative counts.
    pub summary: Summary,
    /// The records of `shadow/divergences.ndjson`, in file order (empty when the file is
    /// missing). They give the details (names, rules, examples); the counts come from
    /// [`RunReport::summary`], which also counts lines that never reached the log.
    pub divergences: Vec<Divergence>,
    /// What became of `divergences.ndjson`.
    pub log: LogState,
    /// `run.json` (`None` for a directory written without one: by the `ct-shadow` library
    /// directly, or by a recorder older than run markers).
    pub marker: Option<RunMarker>,
}

/// What [`load_run`] found in place of `divergences.ndjson`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LogState {
    /// The file does not exist.
    Missing,
    /// The file was read. `records` counts the records kept; `torn_last_line` says that the
    /// last line had no newline and could not be read, so it was left out (the recorder was
    /// killed while writing it).
    Read { records: u64, torn_last_line: bool },
    /// The run's counts came from Prometheus (`report --prometheus`): there is no log, so no
    /// file names, deciding rules or examples. `finished`: its last scrape came after the end
    /// of the program, so the counts are its totals.
    FromMetrics { finished: bool },
}

impl RunReport {
    /// The run id from the summary, else the directory.
    pub fn label(&self) -> String {
        let id = &self.summary.run.meta.run_id;
        if id.is_empty() {
            self.dir.display().to_string()
        } else {
            id.clone()
        }
    }

    /// What a reader of this run's numbers should know: lost or missing log lines, failed
    /// artifact writes, an exhausted time budget. Empty for a clean run.
    pub fn notes(&self) -> Vec<String> {
        let s = &self.summary;
        let mut notes = Vec::new();
        // Without a marker (the ct-shadow library, or a recorder older than markers), the
        // summary itself shows that the stop ran: it is written only there.
        if let Some(m) = self.marker.as_ref().filter(|m| !m.stop_errors.is_empty()) {
            notes.push(format!(
                "the run finished, but {} step(s) of its stop failed (first: {})",
                m.stop_errors.len(),
                m.stop_errors[0]
            ));
        }
        if let Some(cut) = &s.run.meta.trace_cut {
            notes.push(format!(
                "its trace was cut at --max-trace-size ({} bytes, after {} events); the \
                 comparisons cover the whole run",
                cut.limit_bytes, cut.events
            ));
        }
        match self.log {
            LogState::Missing if s.divergences.total > 0 => notes.push(format!(
                "{DIVERGENCES_FILE} is missing: the counts come from {SUMMARY_FILE}, \
                 but there are no examples or deciding rules for its {} divergences",
                s.divergences.total
            )),
            LogState::Missing => {}
            LogState::FromMetrics { finished } => {
                if s.divergences.total > 0 {
                    notes.push(format!(
                        "counts from Prometheus: file names, deciding rules and examples of \
                         its {} divergences are only in its run directory (give it to add \
                         them)",
                        s.divergences.total
                    ));
                }
                if !finished {
                    notes.push(
                        "Prometheus has no scrape after the run ended (still running, or \
                         ended without --metrics-linger): its counts are those of its last \
                         scrape, at most its totals"
                            .to_owned(),
                    );
                }
            }
            LogState::Read {
                records,
                torn_last_line,
            } => {
                if torn_last_line {
                    notes.push(format!(
                        "{DIVERGENCES_FILE}: the last line was cut short (the recorder was \
                         probably killed while writing it) and was skipped"
                    ));
                }
                if records < s.artifacts.divergence_lines {
                    notes.push(format!(
                        "{DIVERGENCES_FILE} holds {records} records, the run wrote {}: \
                         examples and rules may miss some divergences",
                        s.artifacts.divergence_lines
                    ));
                }
            }
        }
        if s.artifacts.write_errors > 0 {
            notes.push(format!(
                "{} artifact writes failed during the run (first: {})",
                s.artifacts.write_errors,
                s.artifacts
                    .first_write_error
                    .as_deref()
                    .unwrap_or("unknown")
            ));
        }
        if let Some(at) = s.budget.exhausted_at_seconds {
            notes.push(format!(
                "the shadow time budget ran out {at:.1} s into the run: {} later code objects \
                 were not compared",
                s.skipped.budget_exhausted
            ));
        }
        notes
    }
}

/// Reads the shadow artifacts of the run directory `dir`: `shadow/summary.json` (required) and
/// `shadow/divergences.ndjson` (optional). `dir` may also be the `shadow/` directory itself.
///
/// A last ndjson line without its newline that cannot be read is skipped (a killed recorder
/// loses at most that line; `LogState::Read { torn_last_line: true, .. }` records it). Any
/// other bad line is an error with its line number, as is a record or a summary of another
/// schema.
pub fn load_run(dir: impl AsRef<Path>) -> Result<RunReport, ReportError> {
    let dir = dir.as_ref();
    let shadow = shadow_dir(dir)?;
    // The marker first: an unfinished run is reported as such, whatever else it left.
    let run_dir = if shadow == dir && dir.join(SUMMARY_FILE).exists() {
        dir.parent().unwrap_or(dir)
    } else {
        dir
    };
    let marker = read_marker(run_dir)?;
    if let Some(m) = &marker {
        if m.state == RunState::Running {
            return Err(ReportError::Unfinished {
                dir: dir.to_owned(),
                run_id: m.run_id.clone(),
            });
        }
    }
    let summary_path = shadow.join(SUMMARY_FILE);
    let summary = read_summary(&summary_path)?;
    if let Some(m) = &marker {
        if m.run_id != summary.run.meta.run_id {
            return Err(ReportError::StaleSummary {
                dir: dir.to_owned(),
                marker_run_id: m.run_id.clone(),
                summary_run_id: summary.run.meta.run_id.clone(),
            });
        }
    }
    check_counts(&summary).map_err(|reason| ReportError::ImpossibleCounts {
        path: summary_path.clone(),
        reason,
    })?;
    let log_path = shadow.join(DIVERGENCES_FILE);
    let (divergences, log) = match File::open(&log_path) {
        Ok(file) => {
            let (records, torn_last_line) = read_log(&log_path, file)?;
            let state = LogState::Read {
                records: records.len() as u64,
                torn_last_line,
            };
            (records, state)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => (Vec::new(), LogState::Missing),
        Err(source) => {
            return Err(ReportError::Io {
                path: log_path,
                source,
            })
        }
    };
    Ok(RunReport {
        dir: dir.to_owned(),
        summary,
        divergences,
        log,
        marker,
    })
}

/// `run.json` of `run_dir`, if any; one of another schema or that cannot be read is an error.
fn read_marker(run_dir: &Path) -> Result<Option<RunMarker>, ReportError> {
    let path = RunMarker::path(run_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ReportError::Io { path, source }),
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ReportError::MalformedMarker {
            reason: format!("{}: not JSON: {e}", path.display()),
        })?;
    let schema = value.get("schema").and_then(|s| s.as_u64());
    if schema != Some(u64::from(MARKER_SCHEMA)) {
        return Err(ReportError::MalformedMarker {
            reason: format!(
                "{}: schema {} is not supported (this ct-reports reads {MARKER_SCHEMA})",
                path.display(),
                value
                    .get("schema")
                    .map_or("(none)".into(), |s| s.to_string())
            ),
        });
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| ReportError::MalformedMarker {
            reason: format!("{}: not a run marker: {e}", path.display()),
        })
}

/// The largest count a summary may hold: 2^48 (about 2.8e14) comparisons is beyond any run,
/// and keeps the sum of 65,536 runs' counts inside u64, so aggregating never wraps.
pub const MAX_COUNT: u64 = 1 << 48;

/// Counts that no run can produce make the summary a broken run, not numbers to add up.
fn check_counts(s: &Summary) -> Result<(), String> {
    let d = &s.divergences;
    let mut counts = vec![
        ("comparisons", s.comparisons),
        ("divergences.total", d.total),
        ("divergences.expected", d.expected),
        ("divergences.unexpected", d.unexpected),
        ("skipped.sampled_out", s.skipped.sampled_out),
        ("skipped.budget_exhausted", s.skipped.budget_exhausted),
        (
            "filter_decision_changes.trace_to_skip",
            s.filter_decision_changes.trace_to_skip,
        ),
        (
            "filter_decision_changes.skip_to_trace",
            s.filter_decision_changes.skip_to_trace,
        ),
    ];
    for c in d.by_kind.values() {
        counts.push(("divergences.by_kind", c.expected));
        counts.push(("divergences.by_kind", c.unexpected));
    }
    for by_reason in s.fallbacks.values() {
        counts.extend(by_reason.values().map(|n| ("fallbacks", *n)));
    }
    counts.extend(s.engine_errors.values().map(|n| ("engine_errors", *n)));
    if let Some((name, n)) = counts.iter().find(|(_, n)| *n > MAX_COUNT) {
        return Err(format!(
            "{name} is {n}, beyond any real run (at most {MAX_COUNT})"
        ));
    }
    if d.expected + d.unexpected != d.total {
        return Err(format!(
            "divergences: expected {} + unexpected {} is not the total {}",
            d.expected, d.unexpected, d.total
        ));
    }
    if d.total > s.comparisons {
        return Err(format!(
            "{} divergences but only {} comparisons",
            d.total, s.comparisons
        ));
    }
    let (e, u) = d
        .by_kind
        .values()
        .fold((0u64, 0u64), |(e, u), c| (e + c.expected, u + c.unexpected));
    if (e, u) != (d.expected, d.unexpected) {
        return Err(format!(
            "divergences by kind add up to {e} expected and {u} unexpected, the totals say {} and {}",
            d.expected, d.unexpected
        ));
    }
    Ok(())
}

/// `<dir>/shadow`, or `dir` itself when it is a shadow directory.
fn shadow_dir(dir: &Path) -> Result<PathBuf, ReportError> {
    let nested = dir.join(SHADOW_DIR);
    if nested.join(SUMMARY_FILE).exists() {
        return Ok(nested);
    }
    if dir.file_name().is_some_and(|n| n == SHADOW_DIR) && dir.join(SUMMARY_FILE).exists() {
        return Ok(dir.to_owned());
    }
    if dir.exists() && !dir.is_dir() {
        return Err(ReportError::NotADirectoryButFile {
            path: dir.to_owned(),
        });
    }
    if !dir.is_dir() {
        return Err(ReportError::NotADirectory {
            path: dir.to_owned(),
        });
    }
    if let Ok(Some(m)) = RunMarker::read(dir) {
        if m.state == RunState::Running {
            return Err(ReportError::Unfinished {
                dir: dir.to_owned(),
                run_id: m.run_id,
            });
        }
    }
    Err(ReportError::MissingSummary {
        dir: dir.to_owned(),
    })
}

fn read_summary(path: &Path) -> Result<Summary, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
        path: path.to_owned(),
        source,
    })?;
    let malformed = |source| ReportError::MalformedSummary {
        path: path.to_owned(),
        source,
    };
    // The schema first: a summary of another version should say so, not "missing field".
    let value: serde_json::Value = serde_json::from_str(&text).map_err(malformed)?;
    if let Some(object) = value.as_object() {
        let found = object.get("schema").and_then(|s| s.as_str());
        if found != Some(SUMMARY_SCHEMA) {
            return Err(ReportError::UnsupportedSchema {
                path: path.to_owned(),
                line: None,
                found: found.map(str::to_owned),
                expected: SUMMARY_SCHEMA,
            });
        }
    }
    // Parsed again from the text (not the value) so that errors carry a line and column.
    serde_json::from_str(&text).map_err(malformed)
}

/// The records of a divergence log and whether its last line was torn.
fn read_log(path: &Path, file: File) -> Result<(Vec<Divergence>, bool), ReportError> {
    let mut reader = BufReader::new(file);
    let mut records = Vec::new();
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|source| ReportError::Io {
                path: path.to_owned(),
                source,
            })?;
        if n == 0 {
            return Ok((records, false));
        }
        line_no += 1;
        let terminated = buf.last() == Some(&b'\n');
        let mut line = buf.as_slice();
        if terminated {
            line = &line[..line.len() - 1];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            if terminated {
                continue; // a blank line carries nothing
            }
            return Ok((records, false));
        }
        match parse_record(line) {
            Ok(record) => records.push(record),
            // The writer ends every line with its newline in the same write, so an unreadable
            // last line without one is what a kill leaves behind. (A whole record is kept.)
            Err(LineError::NotJson(_)) if !terminated => return Ok((records, true)),
            Err(LineError::NotJson(reason) | LineError::NotARecord(reason)) => {
                return Err(ReportError::MalformedLine {
                    path: path.to_owned(),
                    line: line_no,
                    reason,
                })
            }
            Err(LineError::Schema(found)) => {
                return Err(ReportError::UnsupportedSchema {
                    path: path.to_owned(),
                    line: Some(line_no),
                    found,
                    expected: DIVERGENCE_SCHEMA,
                })
            }
        }
    }
}

enum LineError {
    /// Not one JSON value.
    NotJson(String),
    /// JSON without a `schema` string, or with a foreign one.
    Schema(Option<String>),
    /// JSON of the right schema, but not the fields of a record.
    NotARecord(String),
}

fn parse_record(line: &[u8]) -> Result<Divergence, LineError> {
    // Through a Value first, so that a record of another schema is reported as such rather
    // than as whatever field it happens to lack.
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| LineError::NotJson(format!("not JSON: {e}")))?;
    match value.get("schema").and_then(|s| s.as_str()) {
        Some(s) if DIVERGENCE_SCHEMAS_READ.contains(&s) => {}
        found => return Err(LineError::Schema(found.map(str::to_owned))),
    }
    serde_json::from_value(value)
        .map_err(|e| LineError::NotARecord(format!("not a divergence record: {e}")))
}
