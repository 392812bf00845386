//! The run directory (`--trace-dir`): what the recorder owns in it, and the run marker
//! `run.json` that says which run the directory holds and whether it finished.
//!
//! The contract (docs/recording.md, "The run directory"):
//! - A run directory belongs to one run. At start, before the program runs, the marker is
//!   written with `"state": "running"`, then every artifact a previous run left is removed
//!   ([`OWNED_FILES`], [`OWNED_SHADOW_FILES`] and their temporary files). Files the recorder
//!   does not own are never read, moved or deleted; `shadow/` is removed only when nothing
//!   foreign is left in it.
//! - At stop, once the durable artifacts are written, the marker is rewritten atomically
//!   with `"state": "finished"`, the exit status and any step of the stop that failed.
//! - A missing marker or one that still says `running` means the run did not finish (it was
//!   killed, or the process ended without interpreter shutdown): its files are partial.

use std::io;
use std::path::{Path, PathBuf};

pub use ct_shadow::run_marker::{RunMarker, RunState, MARKER_FILE, MARKER_SCHEMA};

/// Files directly in the run directory that belong to the recorder.
pub const OWNED_FILES: &[&str] = &[
    MARKER_FILE,
    "trace.json",
    "trace.bin",
    "trace.ctc",
    "trace_metadata.json",
    "trace_paths.json",
];

/// The shadow-mode sub-directory and the files in it that belong to the recorder.
pub const SHADOW_DIR: &str = ct_shadow::artifacts::SHADOW_DIR;
pub const OWNED_SHADOW_FILES: &[&str] = &[
    ct_shadow::artifacts::SUMMARY_FILE,
    ct_shadow::artifacts::DIVERGENCES_FILE,
    ct_shadow::artifacts::ROOTS_FILE,
    ct_shadow::artifacts::METRICS_FILE,
];

/// Whether `name` is one of the temporary files the recorder's atomic writes use for an
/// owned file `owned`: `.NAME.tmp.PID` (the atomic writes), or `STEM.tmp.PID`, which earlier
/// versions left for the two trace files written at stop.
fn is_temp_of(name: &str, owned: &str) -> bool {
    let stem = match owned {
        "trace_metadata.json" | "trace_paths.json" => {
            owned.rsplit_once('.').map_or(owned, |(s, _)| s)
        }
        _ => "\0",
    };
    let pid_suffix = |rest: &str| {
        rest.strip_prefix(".tmp.")
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
    };
    name.strip_prefix('.')
        .and_then(|n| n.strip_prefix(owned))
        .is_some_and(pid_suffix)
        || name.strip_prefix(stem).is_some_and(pid_suffix)
}

/// What a previous run left in `dir`: the owned files and their temporary files, in `dir`
/// and in `shadow/` (the marker itself excepted: it is replaced, not removed). Nothing is
/// touched yet. A trace file's name taken by a directory is an error: this run could not
/// write the trace, so it is refused before anything changes.
pub fn previous_run_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut stale = owned_in(dir, OWNED_FILES, true)?;
    stale.retain(|p| p.file_name().is_some_and(|n| n != MARKER_FILE));
    // The shadow is a guest: what stands in its way is left alone, and shadow mode turns
    // itself off for the run (with a warning) instead of stopping it.
    let shadow = dir.join(SHADOW_DIR);
    if std::fs::symlink_metadata(&shadow).is_ok_and(|m| m.is_dir()) {
        stale.extend(owned_in(&shadow, OWNED_SHADOW_FILES, false)?);
    }
    Ok(stale)
}

/// Removes `files` (from [`previous_run_files`]), then `dir/shadow` if that left it empty
/// (a foreign file in it keeps it).
pub fn remove_files(dir: &Path, files: &[PathBuf]) -> Result<(), String> {
    for path in files {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", path.display())),
        }
    }
    let _ = std::fs::remove_dir(dir.join(SHADOW_DIR));
    Ok(())
}

/// The owned files in `dir`. A directory with an owned name is an error when `strict`, else
/// left alone.
fn owned_in(dir: &Path, owned: &[&str], strict: bool) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let is_owned = owned.contains(&name);
        if !is_owned && !owned.iter().any(|o| is_temp_of(name, o)) {
            continue;
        }
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if kind.is_dir() {
            if is_owned && strict {
                return Err(format!(
                    "{} is a directory; the recorder writes a file of that name",
                    path.display()
                ));
            }
            continue; // a directory that only looks like a temporary file: not ours
        }
        found.push(path);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_files_of_owned_names() {
        assert!(is_temp_of("trace_metadata.tmp.123", "trace_metadata.json"));
        assert!(is_temp_of(".summary.json.tmp.9", "summary.json"));
        assert!(is_temp_of(".run.json.tmp.42", "run.json"));
        assert!(!is_temp_of("trace.tmp.42", "trace.json"));
        assert!(!is_temp_of("trace_metadata.tmp.", "trace_metadata.json"));
        assert!(!is_temp_of("trace_metadata.tmp.12x", "trace_metadata.json"));
        assert!(!is_temp_of("notes.txt", "trace.json"));
        assert!(!is_temp_of("trace.json.bak", "trace.json"));
    }
}
