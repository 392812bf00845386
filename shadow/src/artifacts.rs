//! The files a shadow run leaves in `<run dir>/shadow/`:
//!
//! - `divergences.ndjson`: one [`Divergence`] per line, appended with a single `write` per
//!   line and no user-space buffer, so a killed recorder loses at most the line being written;
//! - `roots.json`: every `sys.path` roots snapshot of the run, keyed by [`roots_digest`];
//! - `summary.json`: the [`Summary`](crate::Summary);
//! - `metrics.prom`: the final registry in the Prometheus text format.
//!
//! `roots.json`, `summary.json` and `metrics.prom` are replaced atomically
//! ([`write_atomic`]): a reader sees the old file or the new one, never a mix.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::compare::{Divergence, DIVERGENCE_SCHEMAS_READ};

/// The sub-directory of the run directory holding the shadow artifacts.
pub const SHADOW_DIR: &str = "shadow";
pub const DIVERGENCES_FILE: &str = "divergences.ndjson";
pub const ROOTS_FILE: &str = "roots.json";
pub const SUMMARY_FILE: &str = "summary.json";
pub const METRICS_FILE: &str = "metrics.prom";
/// The `schema` of `roots.json`.
pub const ROOTS_SCHEMA: &str = "ct-shadow/roots/v1";

/// A file that could not be written or read, with its path.
#[derive(Debug)]
pub struct ArtifactError {
    pub path: PathBuf,
    pub source: io::Error,
}

impl std::fmt::Display for ArtifactError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for ArtifactError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

pub(crate) fn at(path: &Path) -> impl FnOnce(io::Error) -> ArtifactError + '_ {
    move |source| ArtifactError {
        path: path.to_owned(),
        source,
    }
}

/// The digest naming a `sys.path` roots snapshot: the first 16 hex digits of SHA-256 over the
/// roots, in the legacy engine's order, each followed by a NUL byte (NUL cannot occur in a
/// path, so different lists cannot collide by concatenation).
pub fn roots_digest<S: AsRef<str>>(roots: &[S]) -> String {
    let mut h = Sha256::new();
    for r in roots {
        h.update(r.as_ref().as_bytes());
        h.update([0u8]);
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes `path` atomically: `fill` writes a temporary file in the same directory, which is
/// synced and renamed over `path`. If `fill` or any step fails, `path` is left as it was and
/// the temporary file is removed.
pub fn write_atomic<F>(path: &Path, fill: F) -> io::Result<()>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        {
            let mut w = io::BufWriter::new(&mut file);
            fill(&mut w)?;
            w.flush()?;
        }
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        // Make the rename itself durable; not all platforms can sync a directory.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Serialises `value` as pretty JSON (plus a final newline) into `path`, atomically.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), ArtifactError> {
    write_atomic(path, |w| {
        serde_json::to_writer_pretty(&mut *w, value)?;
        w.write_all(b"\n")
    })
    .map_err(at(path))
}

/// `divergences.ndjson`, open for appending.
#[derive(Debug)]
pub struct DivergenceLog {
    file: File,
    path: PathBuf,
    lines: u64,
}

impl DivergenceLog {
    /// Creates (or empties) `<shadow_dir>/divergences.ndjson`, creating the directory.
    pub fn create(shadow_dir: &Path) -> Result<DivergenceLog, ArtifactError> {
        fs::create_dir_all(shadow_dir).map_err(at(shadow_dir))?;
        let path = shadow_dir.join(DIVERGENCES_FILE);
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(at(&path))?;
        Ok(DivergenceLog {
            file,
            path,
            lines: 0,
        })
    }

    /// Appends one record as one line, handed to the OS before returning.
    pub fn append(&mut self, d: &Divergence) -> Result<(), ArtifactError> {
        let mut line = serde_json::to_vec(d)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
            .map_err(at(&self.path))?;
        line.push(b'\n');
        // One write of the whole line: no buffer to lose, and no interleaving with another
        // writer of the same file.
        self.file.write_all(&line).map_err(at(&self.path))?;
        self.file.flush().map_err(at(&self.path))?;
        self.lines += 1;
        Ok(())
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads a `divergences.ndjson` back. A last line without its newline (the recorder was
/// killed while writing it) is ignored; any other unreadable line, or a line of another
/// schema, is an error naming its line number.
pub fn read_divergences(path: &Path) -> Result<Vec<Divergence>, ArtifactError> {
    let file = File::open(path).map_err(at(path))?;
    let mut out = Vec::new();
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    let mut n = 0;
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(at(path))? == 0 {
            break;
        }
        n += 1;
        if !line.ends_with('\n') {
            break; // torn last line
        }
        let bad = |msg: String| ArtifactError {
            path: path.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidData, format!("line {n}: {msg}")),
        };
        let d: Divergence = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        if !DIVERGENCE_SCHEMAS_READ.contains(&d.schema.as_str()) {
            return Err(bad(format!("unknown schema {:?}", d.schema)));
        }
        out.push(d);
    }
    Ok(out)
}

/// The content of `roots.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootsFile {
    pub schema: String,
    /// Digest → roots, in the legacy engine's order.
    pub roots: BTreeMap<String, Vec<String>>,
}

impl RootsFile {
    pub fn new() -> RootsFile {
        RootsFile {
            schema: ROOTS_SCHEMA.to_owned(),
            roots: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::DIVERGENCE_SCHEMA;

    #[test]
    fn roots_digest_is_order_sensitive_and_unambiguous() {
        let a = roots_digest(&["/srv/app/src", "/srv/app"]);
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(
            a,
            roots_digest(&["/srv/app/src".to_owned(), "/srv/app".to_owned()])
        );
        assert_ne!(a, roots_digest(&["/srv/app", "/srv/app/src"]));
        assert_ne!(roots_digest(&["/a", "b"]), roots_digest(&["/ab"]));
        assert_ne!(roots_digest::<&str>(&[]), roots_digest(&[""]));
        // Independent check: SHA-256 of "/a\0" (computed with sha256sum).
        assert_eq!(roots_digest(&["/a"]), "d24a5d125d6c74b2");
    }

    #[test]
    fn torn_last_line_is_ignored_but_bad_middle_lines_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.ndjson");
        let good = serde_json::to_string(&sample()).unwrap();
        fs::write(&path, format!("{good}\n{good}\n{{\"schema\":\"ct-sh")).unwrap();
        assert_eq!(read_divergences(&path).unwrap().len(), 2);
        fs::write(&path, format!("{good}\nnot json\n{good}\n")).unwrap();
        let e = read_divergences(&path).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let other = good.replace(DIVERGENCE_SCHEMA, "ct-shadow/divergence/v99");
        fs::write(&path, format!("{other}\n")).unwrap();
        assert!(read_divergences(&path).is_err());
    }

    pub(crate) fn sample() -> Divergence {
        use crate::model::*;
        crate::compare::compare(&Observation {
            filename: "/srv/app/src/mypkg/core.py".into(),
            qualname: "<module>".into(),
            is_module: true,
            globals_name: GlobalsName::str("mypkg.core"),
            spec_name: Some("mypkg.core".into()),
            sys_path_roots: "b5d79c0f8c3b8a59".into(),
            primary: EngineResult::named(Engine::Globals, "mypkg.core"),
            shadow: EngineResult::named(Engine::Legacy, "src.mypkg.core"),
            thread_id: 7,
            first_seen: 0.5,
        })
        .unwrap()
    }
}
