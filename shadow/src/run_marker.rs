//! `run.json`, the run marker: which run a run directory holds and whether it finished.
//!
//! The recorder (ct-recorder's `src/rundir.rs`) writes it at start with `"state": "running"`
//! and rewrites it atomically at stop with `"state": "finished"`; readers (`ct-rollout
//! report`, the trace reader) treat a missing marker or a `running` one as a run that did
//! not finish. The type lives here, beside the other artifact types, so that the writer and
//! the readers share one definition.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The marker's file name, in the run directory (not in `shadow/`).
pub const MARKER_FILE: &str = "run.json";
/// The marker's `schema`.
pub const MARKER_SCHEMA: u32 = 1;

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Finished,
}

/// The content of `run.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunMarker {
    pub schema: u32,
    /// `"{unix_secs}-{pid}"`, the same id as in the shadow summary and the metrics.
    pub run_id: String,
    pub state: RunState,
    pub pid: u32,
    pub recorder_version: String,
    pub program: String,
    pub args: Vec<String>,
    pub started_unix: f64,
    /// `trace.json` or `trace.bin`; `None` (null) for an evidence-only run, which writes no
    /// trace.
    pub events_file: Option<String>,
    pub shadow_compare: bool,
    /// `--evidence-only`: the run gathers shadow evidence and writes no trace.
    #[serde(default)]
    pub evidence_only: bool,
    /// Set when finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_unix: Option<f64>,
    /// The program's exit status, when known (finished runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Steps of the stop sequence that failed (finished runs only; empty when all worked).
    #[serde(default)]
    pub stop_errors: Vec<String>,
}

impl RunMarker {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(MARKER_FILE)
    }

    /// Writes the marker atomically (a temporary file renamed over `run.json`, removed if any
    /// step fails).
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        crate::artifacts::write_atomic(&Self::path(dir), |w| {
            w.write_all(&bytes)?;
            w.write_all(b"\n")
        })
    }

    /// Reads `dir/run.json`: `Ok(None)` when there is none.
    pub fn read(dir: &Path) -> Result<Option<RunMarker>, String> {
        let path = Self::path(dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{}: not a run marker: {e}", path.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }
}
