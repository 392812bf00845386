//! Change sets: the new bytes of every file a command will touch, their unified diff, and
//! all-or-nothing application.
//!
//! [`ChangeSet::apply`] first writes every new file to a temporary beside its target and
//! fsyncs it, then renames them into place one by one (a file to delete is renamed to a
//! backup beside it). If any step fails, every file already replaced gets its original
//! bytes back and every temporary is removed, so the tree is byte-identical to before. The
//! returned [`Applied`] can still [`restore`](Applied::restore) the originals (a failed
//! verification) until it is [`finish`](Applied::finish)ed.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use similar::TextDiff;

use super::LifecycleError;

/// Test-only failure injection: when set to `N`, [`ChangeSet::apply`] fails right after
/// the `N`th file has been replaced, as a full disk or a crash would, and restores. Used by
/// the test suite to prove atomicity; never set it otherwise.
pub const FAIL_AFTER_ENV: &str = "CT_ROLLOUT_TEST_FAIL_AFTER";

/// One file's change. `old: None` creates the file, `new: None` deletes it.
#[derive(Clone, Debug)]
pub struct FileChange {
    /// Relative to the repository root, `/`-separated (as shown in the diff).
    pub path: String,
    pub old: Option<Vec<u8>>,
    pub new: Option<Vec<u8>>,
}

/// Every file change of one command, in order.
#[derive(Clone, Debug, Default)]
pub struct ChangeSet {
    pub root: PathBuf,
    pub changes: Vec<FileChange>,
}

impl ChangeSet {
    pub fn new(root: &Path) -> Self {
        ChangeSet {
            root: root.to_path_buf(),
            changes: Vec::new(),
        }
    }

    /// Replaces `path`'s bytes (read now) with `new`; nothing when they are equal.
    pub fn write(&mut self, path: &str, new: impl Into<Vec<u8>>) -> Result<(), LifecycleError> {
        let old = read_opt(&self.root.join(path))?;
        let new = new.into();
        if old.as_deref() != Some(new.as_slice()) {
            self.changes.push(FileChange {
                path: path.to_owned(),
                old,
                new: Some(new),
            });
        }
        Ok(())
    }

    /// Deletes `path` (which must exist).
    pub fn delete(&mut self, path: &str) -> Result<(), LifecycleError> {
        let old = read_opt(&self.root.join(path))?;
        if old.is_some() {
            self.changes.push(FileChange {
                path: path.to_owned(),
                old,
                new: None,
            });
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The paths changed, in order.
    pub fn paths(&self) -> Vec<&str> {
        self.changes.iter().map(|c| c.path.as_str()).collect()
    }

    /// The unified diff of every change (`a/PATH` → `b/PATH`, `/dev/null` for a created or
    /// deleted file), three lines of context.
    pub fn diff(&self) -> String {
        let mut out = String::new();
        for c in &self.changes {
            let old = c
                .old
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let new = c
                .new
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let a = if c.old.is_some() {
                format!("a/{}", c.path)
            } else {
                "/dev/null".to_owned()
            };
            let b = if c.new.is_some() {
                format!("b/{}", c.path)
            } else {
                "/dev/null".to_owned()
            };
            out.push_str(&format!("diff --ct-rollout a/{0} b/{0}\n", c.path));
            let diff = TextDiff::from_lines(old.as_ref(), new.as_ref());
            let text = diff
                .unified_diff()
                .context_radius(3)
                .header(&a, &b)
                .to_string();
            out.push_str(&text);
            if !text.is_empty() && !text.ends_with('\n') {
                out.push('\n');
            }
        }
        out
    }

    /// Applies every change or none (see the module documentation).
    pub fn apply(&self) -> Result<Applied, LifecycleError> {
        let fail_after: Option<usize> = std::env::var(FAIL_AFTER_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok());
        let mut applied = Applied {
            root: self.root.clone(),
            done: Vec::new(),
            pending: Vec::new(),
        };
        // 1. Temporaries, written and fsynced before anything is replaced.
        for c in &self.changes {
            let target = self.root.join(&c.path);
            if let Some(new) = &c.new {
                let tmp = beside(&target, "tmp");
                let written = write_synced(&tmp, new).and_then(|()| match fs::metadata(&target) {
                    // The replacement keeps the file's mode (an executable script stays one).
                    Ok(meta) => fs::set_permissions(&tmp, meta.permissions()),
                    Err(_) => Ok(()),
                });
                if let Err(e) = written {
                    applied.pending.push(tmp);
                    let restored = applied.undo();
                    return Err(io_err(&c.path, "writing a temporary", &e, restored));
                }
                applied.pending.push(tmp);
            }
        }
        // 2. Renames, one file at a time.
        let mut tmps = applied.pending.clone().into_iter();
        for (i, c) in self.changes.iter().enumerate() {
            let target = self.root.join(&c.path);
            let step = if c.new.is_some() {
                let tmp = tmps.next().expect("one temporary per written file");
                fs::rename(&tmp, &target).map(|()| {
                    applied.pending.retain(|p| p != &tmp);
                    Done {
                        path: target.clone(),
                        old: c.old.clone(),
                        backup: None,
                    }
                })
            } else {
                let backup = beside(&target, "bak");
                fs::rename(&target, &backup).map(|()| Done {
                    path: target.clone(),
                    old: c.old.clone(),
                    backup: Some(backup),
                })
            };
            match step {
                Ok(done) => applied.done.push(done),
                Err(e) => {
                    let restored = applied.undo();
                    return Err(io_err(&c.path, "replacing", &e, restored));
                }
            }
            if fail_after == Some(i + 1) {
                let restored = applied.undo();
                let e = std::io::Error::other(format!("{FAIL_AFTER_ENV}={} (test only)", i + 1));
                return Err(io_err(&c.path, "after replacing", &e, restored));
            }
        }
        for dir in self.changed_dirs() {
            sync_dir(&dir);
        }
        Ok(applied)
    }

    fn changed_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .changes
            .iter()
            .filter_map(|c| self.root.join(&c.path).parent().map(Path::to_path_buf))
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }
}

struct Done {
    path: PathBuf,
    old: Option<Vec<u8>>,
    /// Where a deleted file waits until [`Applied::finish`].
    backup: Option<PathBuf>,
}

/// Changes applied and still undoable.
pub struct Applied {
    root: PathBuf,
    done: Vec<Done>,
    pending: Vec<PathBuf>,
}

impl Applied {
    /// Puts every original back (verification failed). Errors say what could not be.
    pub fn restore(mut self) -> Result<(), LifecycleError> {
        self.undo()
            .map_err(|e| LifecycleError::Io(format!("restoring the original files: {e}")))
    }

    /// Makes the change final: drops the backups of deleted files and removes the
    /// directories they leave empty.
    pub fn finish(self) {
        for d in &self.done {
            if let Some(backup) = &d.backup {
                let _ = fs::remove_file(backup);
                let mut dir = d.path.parent();
                while let Some(p) = dir {
                    if p == self.root || fs::remove_dir(p).is_err() {
                        break;
                    }
                    dir = p.parent();
                }
            }
        }
    }

    /// Undoes in reverse order; `Err` lists the files it could not restore.
    fn undo(&mut self) -> Result<(), String> {
        let mut failed = Vec::new();
        for tmp in self.pending.drain(..) {
            let _ = fs::remove_file(tmp);
        }
        while let Some(d) = self.done.pop() {
            let ok = match (&d.backup, &d.old) {
                (Some(backup), _) => fs::rename(backup, &d.path).is_ok(),
                (None, Some(old)) => {
                    let tmp = beside(&d.path, "restore");
                    let ok = write_synced(&tmp, old).is_ok() && fs::rename(&tmp, &d.path).is_ok();
                    if !ok {
                        let _ = fs::remove_file(&tmp);
                    }
                    ok
                }
                (None, None) => fs::remove_file(&d.path).is_ok(),
            };
            if !ok {
                failed.push(d.path.display().to_string());
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!("could not restore {}", failed.join(", ")))
        }
    }
}

fn io_err(
    path: &str,
    what: &str,
    e: &std::io::Error,
    restored: Result<(), String>,
) -> LifecycleError {
    LifecycleError::Io(match restored {
        Ok(()) => format!("{what} {path}: {e}; every file was restored, nothing changed"),
        Err(r) => format!("{what} {path}: {e}; and then {r}: check the tree by hand"),
    })
}

/// `DIR/.NAME.ct-rollout.KIND`.
fn beside(target: &Path, kind: &str) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.ct-rollout.{kind}"))
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut f = fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn read_opt(path: &Path) -> Result<Option<Vec<u8>>, LifecycleError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LifecycleError::Io(format!("{}: {e}", path.display()))),
    }
}
