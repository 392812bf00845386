//! The rollout manifest as `ct-rollout` reads it at run time, and its edits.
//!
//! The recorder's built-in default comes from `rollout.toml` when the recorder is built
//! (`build.rs`); `ct-rollout` reads the file of the repository it acts on each time it
//! runs, so an edit takes effect on the next command (and on the recorder's next build).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml_edit::{value, Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table};

use super::LifecycleError;
use crate::{GateResult, Gates, Measure};

/// The manifest's file name, at the root of the repository.
pub const MANIFEST_FILE: &str = "rollout.toml";

/// The phases, in rollout order, with the flag default each requires (as in `build.rs`).
pub const PHASES: [(&str, bool); 4] = [
    ("legacy", false),
    ("shadow", false),
    ("globals-default", true),
    ("legacy-deleted", true),
];

/// The project check `delete-legacy` runs on its result unless `[lifecycle] verify` says
/// otherwise: a build, then the Rust tests.
pub const DEFAULT_VERIFY: [&str; 2] = ["cargo build --workspace", "cargo test --workspace"];

/// The repository `ct-rollout` acts on.
#[derive(Clone, Debug)]
pub struct Repo {
    /// The directory holding `rollout.toml`.
    pub root: PathBuf,
}

impl Repo {
    /// `--repo DIR` when given (it must hold `rollout.toml`), else the nearest directory
    /// holding `rollout.toml` from `cwd` upward.
    pub fn find(explicit: Option<&Path>, cwd: &Path) -> Result<Repo, LifecycleError> {
        if let Some(dir) = explicit {
            let dir = if dir.is_absolute() {
                dir.to_path_buf()
            } else {
                cwd.join(dir)
            };
            if dir.join(MANIFEST_FILE).is_file() {
                return Ok(Repo { root: dir });
            }
            return Err(LifecycleError::Usage(format!(
                "--repo {}: no {MANIFEST_FILE} there (the repository to act on is the one \
                 holding the rollout manifest)",
                dir.display()
            )));
        }
        for dir in cwd.ancestors() {
            if dir.join(MANIFEST_FILE).is_file() {
                return Ok(Repo {
                    root: dir.to_path_buf(),
                });
            }
        }
        Err(LifecycleError::Usage(format!(
            "no {MANIFEST_FILE} in {} or any directory above it: run ct-rollout inside the \
             repository that holds the rollout manifest, or pass --repo DIR",
            cwd.display()
        )))
    }

    /// `rollout.toml`'s path.
    pub fn manifest_path(&self) -> PathBuf {
        self.root.join(MANIFEST_FILE)
    }

    /// A path of the repository from its `/`-separated relative form.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }
}

/// A number recorded in an audit entry (a count or a rate).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Number {
    Count(u64),
    Rate(f64),
}

/// One gate as it stood when a phase changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateRecord {
    pub passed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Number>,
}

/// One `[[history]]` entry: a phase change, who forced it and why, on what evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// UTC, RFC 3339 (`2026-12-01T17:20:00Z`).
    pub time: String,
    /// `flip-default`, `revert` or `delete-legacy`.
    pub action: String,
    pub from: String,
    pub to: String,
    /// A gate or precondition failed and `--force` overrode it.
    #[serde(default)]
    pub forced: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `$USER` of whoever ran the command, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// How many runs the evidence had.
    #[serde(default)]
    pub runs: u64,
    /// Their run ids (left out beyond [`MAX_LISTED_RUNS`]; the digest covers all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_ids: Vec<String>,
    /// `sha256:` of the sorted run ids, one per line.
    #[serde(default)]
    pub evidence_digest: String,
    /// The gates as they stood, by manifest key.
    #[serde(default)]
    pub gates: BTreeMap<String, GateRecord>,
}

/// Beyond this many runs an audit entry keeps only their digest.
pub const MAX_LISTED_RUNS: usize = 50;

#[derive(Deserialize)]
struct Raw {
    flag: RawFlag,
    rollout: RawRollout,
    #[serde(default)]
    history: Vec<HistoryEntry>,
    #[serde(default)]
    lifecycle: RawLifecycle,
}

#[derive(Deserialize)]
struct RawFlag {
    default: bool,
}

#[derive(Deserialize)]
struct RawRollout {
    phase: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLifecycle {
    verify: Option<Vec<String>>,
}

/// The manifest of a repository, read now.
#[derive(Clone, Debug)]
pub struct RepoManifest {
    pub repo: Repo,
    /// The file's text (edits start from it, so comments and layout stay).
    pub text: String,
    pub phase: String,
    pub default: bool,
    pub gates: Gates,
    pub history: Vec<HistoryEntry>,
    /// `[lifecycle] verify`: shell commands run in the repository after `delete-legacy`.
    pub verify: Vec<String>,
}

impl RepoManifest {
    /// Reads and checks `rollout.toml` of `repo`. Errors name the file and the key.
    pub fn load(repo: &Repo) -> Result<RepoManifest, LifecycleError> {
        let path = repo.manifest_path();
        let bad = |m: String| LifecycleError::Usage(format!("{}: {m}", path.display()));
        let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
        let raw: Raw = toml::from_str(&text).map_err(|e| bad(e.to_string().trim().to_owned()))?;
        let Some(&(_, required)) = PHASES.iter().find(|p| p.0 == raw.rollout.phase) else {
            return Err(bad(format!(
                "[rollout] phase = {:?} is not a phase (legacy, shadow, globals-default, \
                 legacy-deleted)",
                raw.rollout.phase
            )));
        };
        if raw.flag.default != required {
            return Err(bad(format!(
                "[flag] default = {} contradicts [rollout] phase = {:?}, which requires \
                 default = {required}",
                raw.flag.default, raw.rollout.phase
            )));
        }
        let gates = Gates::from_manifest(&text).map_err(|e| bad(e.to_string()))?;
        Ok(RepoManifest {
            repo: repo.clone(),
            phase: raw.rollout.phase,
            default: raw.flag.default,
            gates,
            history: raw.history,
            verify: raw
                .lifecycle
                .verify
                .unwrap_or_else(|| DEFAULT_VERIFY.iter().map(|s| s.to_string()).collect()),
            text,
        })
    }

    /// The engine a build from this manifest uses by default.
    pub fn default_engine(&self) -> &'static str {
        if self.default {
            "globals"
        } else {
            "legacy"
        }
    }

    /// The last audit entry that moved the phase to `to`.
    pub fn last_entry_to(&self, to: &str) -> Option<&HistoryEntry> {
        self.history.iter().rev().find(|h| h.to == to)
    }
}

/// The manifest's text with `[rollout] phase` and `[flag] default` set and `entry` appended
/// to `[[history]]`; comments and layout elsewhere are kept.
pub fn edited_manifest(
    text: &str,
    phase: &str,
    default: bool,
    entry: &HistoryEntry,
) -> Result<String, LifecycleError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| LifecycleError::Usage(format!("{MANIFEST_FILE}: {e}")))?;
    set_keeping_decor(&mut doc, "rollout", "phase", value(phase))?;
    set_keeping_decor(&mut doc, "flag", "default", value(default))?;
    let fresh = !doc.contains_key("history");
    if fresh {
        doc.insert("history", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    let Some(history) = doc["history"].as_array_of_tables_mut() else {
        return Err(LifecycleError::Usage(format!(
            "{MANIFEST_FILE}: `history` must be an array of tables ([[history]])"
        )));
    };
    let mut table = history_table(entry);
    if fresh {
        table.decor_mut().set_prefix(
            "\n# Audit trail, appended by ct-rollout (flip-default, --revert, delete-legacy):\n\
             # one entry per phase change, with the evidence and who forced it and why.\n",
        );
    } else {
        table.decor_mut().set_prefix("\n");
    }
    history.push(table);
    Ok(doc.to_string())
}

fn set_keeping_decor(
    doc: &mut DocumentMut,
    table: &str,
    key: &str,
    new: Item,
) -> Result<(), LifecycleError> {
    let slot = doc
        .get_mut(table)
        .and_then(|t| t.as_table_like_mut())
        .and_then(|t| t.get_mut(key))
        .ok_or_else(|| LifecycleError::Usage(format!("{MANIFEST_FILE}: no [{table}] {key}")))?;
    let decor = slot.as_value().map(|v| v.decor().clone());
    *slot = new;
    if let (Some(decor), Some(v)) = (decor, slot.as_value_mut()) {
        *v.decor_mut() = decor;
    }
    Ok(())
}

fn number(n: Number) -> toml_edit::Value {
    match n {
        Number::Count(c) => (c.min(i64::MAX as u64) as i64).into(),
        Number::Rate(r) => r.into(),
    }
}

fn history_table(e: &HistoryEntry) -> Table {
    let mut t = Table::new();
    t.insert("time", value(&e.time));
    t.insert("action", value(&e.action));
    t.insert("from", value(&e.from));
    t.insert("to", value(&e.to));
    t.insert("forced", value(e.forced));
    if let Some(reason) = &e.reason {
        t.insert("reason", value(reason));
    }
    if let Some(by) = &e.by {
        t.insert("by", value(by));
    }
    t.insert("runs", value(e.runs.min(i64::MAX as u64) as i64));
    if !e.run_ids.is_empty() {
        let ids: Array = e.run_ids.iter().map(String::as_str).collect();
        t.insert("run_ids", value(ids));
    }
    t.insert("evidence_digest", value(&e.evidence_digest));
    let mut gates = InlineTable::new();
    for (name, g) in &e.gates {
        let mut one = InlineTable::new();
        one.insert("passed", g.passed.into());
        if let Some(a) = g.actual {
            one.insert("actual", number(a));
        }
        if let Some(th) = g.threshold {
            one.insert("threshold", number(th));
        }
        gates.insert(name, one.into());
    }
    t.insert("gates", value(gates));
    t
}

/// Converts gate results to their audit form.
pub fn gate_records(results: &[GateResult]) -> BTreeMap<String, GateRecord> {
    let conv = |m: Measure| match m {
        Measure::Count(n) => Some(Number::Count(n)),
        Measure::Rate(r) => Some(Number::Rate(r)),
        Measure::None => None,
    };
    results
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                GateRecord {
                    passed: r.passed,
                    actual: conv(r.actual),
                    threshold: conv(r.threshold),
                },
            )
        })
        .collect()
}

/// `sha256:HEX` of the sorted run ids, one per line.
pub fn evidence_digest(run_ids: &[String]) -> String {
    use sha2::{Digest, Sha256};
    let mut ids: Vec<&str> = run_ids.iter().map(String::as_str).collect();
    ids.sort_unstable();
    let mut h = Sha256::new();
    for id in ids {
        h.update(id.as_bytes());
        h.update(b"\n");
    }
    let out = h.finalize();
    let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// An audit entry for a phase change now, on the given evidence.
pub fn new_entry(
    action: &str,
    from: &str,
    to: &str,
    forced: bool,
    reason: Option<&str>,
    run_ids: &[String],
    results: &[GateResult],
) -> HistoryEntry {
    HistoryEntry {
        time: super::utc_now(),
        action: action.to_owned(),
        from: from.to_owned(),
        to: to.to_owned(),
        forced,
        reason: reason.map(str::to_owned),
        by: std::env::var("USER").ok().filter(|u| !u.is_empty()),
        runs: run_ids.len() as u64,
        run_ids: if run_ids.len() <= MAX_LISTED_RUNS {
            run_ids.to_vec()
        } else {
            Vec::new()
        },
        evidence_digest: evidence_digest(run_ids),
        gates: gate_records(results),
    }
}
