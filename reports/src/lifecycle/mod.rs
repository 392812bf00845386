//! # The migration's last steps: `status`, `flip-default`, `delete-legacy`
//!
//! `ct-rollout` acts on the repository that holds `rollout.toml` ([`Repo::find`]). Every
//! command that changes files first builds a [`ChangeSet`] — the exact new bytes of every
//! file it will touch — prints its unified diff, and only then applies it atomically
//! ([`ChangeSet::apply`]): temporaries beside the targets, fsync, rename, and the original
//! bytes put back if any step fails.
//!
//! - [`manifest`]: the manifest read at run time (phase, flag default, gates, the
//!   `[[history]]` audit trail, the `[lifecycle]` settings) and its comment-keeping edits
//!   (`toml_edit`);
//! - [`change`]: change sets, diffs (`similar`), atomic application and restore;
//! - [`flip`]: `flip-default` and `--revert` (manifest, CHANGELOG, ADR 0016);
//! - [`extinction`]: the evidence `delete-legacy` needs (no run chose legacy since the flip);
//! - [`delete`]: `delete-legacy`, the syntactic removal of legacy-gated Rust items (`syn`
//!   with span locations), the legacy folder, the feature and the marked doc sections;
//! - [`status`]: what `ct-rollout status` shows.
//!
//! Gates are never evaluated here: callers pass the [`GateResult`](crate::GateResult)s of
//! [`check`](crate::check), the function `ct-rollout report --check` uses.

pub mod change;
pub mod delete;
pub mod extinction;
pub mod flip;
pub mod manifest;
pub mod status;

pub use change::{ChangeSet, FileChange, FAIL_AFTER_ENV};
pub use manifest::{HistoryEntry, Repo, RepoManifest, MANIFEST_FILE};

use std::fmt;

/// Why a lifecycle command did not act. `Refused` (status 1) is a precondition or gate
/// that does not hold; `Usage` (status 2) is a problem with the input.
#[derive(Debug)]
pub enum LifecycleError {
    /// A precondition does not hold: each line names one, with what to do about it.
    Refused(Vec<String>),
    /// Bad input (no repository, an unreadable or invalid manifest, bad arguments).
    Usage(String),
    /// A file operation failed; everything was restored (the message says so, or not).
    Io(String),
}

impl fmt::Display for LifecycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LifecycleError::Refused(reasons) => {
                for (i, r) in reasons.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "- {r}")?;
                }
                Ok(())
            }
            LifecycleError::Usage(m) | LifecycleError::Io(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for LifecycleError {}

/// The current UTC time as RFC 3339 with seconds (`2026-12-01T17:20:00Z`).
pub fn utc_now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// The UTC date part of [`utc_now`].
pub fn utc_today() -> String {
    utc_now()[..10].to_owned()
}
