//! L4: the `sys.modules` scan, as a plain reference and as a cached scanner.
//!
//! [`reference_scan`] is the spec read literally: every entry is read on every lookup. It
//! is O(entries) attribute reads per lookup, so an import-heavy program pays O(n²) reads.
//!
//! [`ScanCache`] gives the same answers while reading each entry only when it is new or
//! may have changed. What a scan needs from one entry — its normalised candidate paths,
//! its preferred name and that name's score — depends only on the entry (key text and the
//! value's attributes), never on the target, so it is computed once per read and cached
//! under the entry's identity (key object, value object) together with the read's
//! [`Stamp`]. On each lookup the table is still walked in order (L4.1/L4.2 depend on
//! order, and CPython 3.11 has no dict watchers to learn about changes any other way), but
//! an unchanged entry costs a hash-map probe, a stamp check and up to three hash
//! comparisons: no attribute read, no allocation. Why this is exact:
//!
//! - the walk visits the same snapshot in the same order as the reference, and applies the
//!   same decisions (non-`str` key aborts, `None` skipped, first lowest score kept, first
//!   score 0 ends the scan) to the same per-entry facts;
//! - cached facts are used only while [`ModuleEntry::is_current`] vouches that a re-read
//!   would return the same attributes; otherwise the entry is re-read on the spot. Entry
//!   identities cover insertions, deletions, re-insertions and replacement of a value
//!   under the same key; stamps cover attribute changes of the value (and of its
//!   `__spec__`, its class, its instance dict);
//! - the cache is swept after every lookup down to the entries present in the snapshot, so
//!   it never keeps objects alive past the next lookup and never grows beyond the table.
//!
//! `tests/naming_differential.rs` checks the equivalence on thousands of random tables and
//! mutation sequences.

use std::collections::hash_map::Entry;
use std::hash::Hasher;
use std::ops::ControlFlow;

use rustc_hash::{FxHashMap, FxHasher};

use crate::naming::is_valid_dotted_name;
use crate::naming::paths::normalise_into;
use crate::naming::table::{EntryId, EntryRead, ModuleTable, SpecValue, Stamp};

/// Counters of the scan, for metrics and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScanStats {
    /// Scans run.
    pub scans: u64,
    /// Entries read (attribute reads), new or re-read.
    pub entries_read: u64,
    /// Attributes that only a hook could have produced, counted once per read (L4.7).
    pub hook_only_attrs: u64,
    /// Scans that a non-`str` key aborted (L4.2).
    pub non_str_key_aborts: u64,
    /// Lookups answered by a scan another resolver ran for the same target at the same
    /// moment (see `PySysModules::begin_moment`); not counted in `scans`.
    pub shared_answers: u64,
    /// Entries whose instance dict changed but whose attributes did not (a deep check
    /// repeated the dict lookups and found the same objects): no re-read needed.
    pub deep_checks: u64,
    /// Wall time spent in scans of the real `sys.modules`, in nanoseconds.
    pub scan_ns: u64,
    /// Entries found again at a new position after being removed (importlib pops a module
    /// and re-inserts it once its body has run): their cached facts were kept.
    pub moved: u64,
    /// CPython 3.12+: events of `sys.modules` the dict watcher reported and the scanner
    /// applied to its mirror.
    pub journal_events: u64,
    /// CPython 3.12+: changed dicts (module, spec, class dicts a read looked into) the
    /// watcher reported, once per dict per lookup at most.
    pub dirty_dicts: u64,
    /// CPython 3.12+: words no watcher reports on (a spec's `__dict__` slot, 3.13's
    /// inline values...), summed over lookups: what a lookup still reads per loaded module.
    pub polled_words: u64,
    /// CPython 3.12+: times the mirror of `sys.modules` was rebuilt from the dict (the
    /// first lookup, and events it could not apply exactly).
    pub rebuilds: u64,
}

/// L4.4: a candidate matches the target when equal, or when it is the target plus a final
/// `c` (legacy `mod.pyc` next to `mod.py`).
pub fn candidate_matches(candidate: &str, target: &str) -> bool {
    candidate == target
        || (candidate.ends_with(".pyc")
            && target.ends_with(".py")
            && &candidate[..candidate.len() - 1] == target)
}

fn hash_str(text: &str) -> u64 {
    hash_bytes(text.as_bytes())
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(bytes);
    hasher.finish()
}

/// What the scan needs from one entry (target-independent).
///
/// One heap block: the candidate paths and the preferred name sit one after the other in
/// `text`; a scanner keeps one of these per module, so its size and allocation count are
/// paid once per loaded module (and again when the session stops and drops them).
#[derive(Debug, Clone)]
pub struct EntryFacts {
    /// The normalised candidates, then the preferred name.
    text: String,
    /// L4.3: (hash, start, end) in `text` of normalised `__spec__.origin`, `__file__`,
    /// `__cached__` (those that are `str` and normalise to something); `len` are used.
    candidates: [(u64, u32, u32); 3],
    len: u8,
    /// L4.6: 0 for a valid dotted name, 1 otherwise.
    score: u8,
    /// L4.5: where the preferred name (first non-empty `str` of `__spec__.name`,
    /// `__name__`; else the key) starts in `text`.
    preferred: u32,
}

impl EntryFacts {
    /// Derives the facts from a read.
    pub fn from_read(read: &EntryRead) -> Self {
        let attrs = &read.attrs;
        let (origin, spec_name) = match &attrs.spec {
            SpecValue::Object { origin, name } => (origin.as_str(), name.as_str()),
            _ => (None, None),
        };
        let paths = [origin, attrs.file.as_str(), attrs.cached.as_str()];
        let preferred = [spec_name, attrs.name.as_str()]
            .into_iter()
            .flatten()
            .find(|s| !s.is_empty())
            // The reference falls back to the key even when it is empty.
            .unwrap_or(&read.key);
        let size = paths.iter().flatten().map(|p| p.len()).sum::<usize>() + preferred.len();
        let mut text = String::with_capacity(size);
        let mut candidates = [(0, 0, 0); 3];
        let mut len = 0;
        for path in paths.into_iter().flatten() {
            let start = text.len();
            if normalise_into(path, &mut text) {
                let end = text.len();
                candidates[len] = (hash_str(&text[start..end]), start as u32, end as u32);
                len += 1;
            }
        }
        let at = text.len();
        text.push_str(preferred);
        EntryFacts {
            score: u8::from(!is_valid_dotted_name(preferred)),
            text,
            candidates,
            len: len as u8,
            preferred: at as u32,
        }
    }

    fn entries(&self) -> impl Iterator<Item = (u64, &str)> {
        self.candidates[..self.len as usize]
            .iter()
            .map(|&(hash, start, end)| (hash, &self.text[start as usize..end as usize]))
    }

    /// The normalised candidate paths, in L4.3 order.
    pub fn candidates(&self) -> impl Iterator<Item = &str> {
        self.entries().map(|(_, path)| path)
    }

    /// The preferred name (L4.5).
    pub fn preferred(&self) -> &str {
        &self.text[self.preferred as usize..]
    }

    /// The score (L4.6).
    pub fn score(&self) -> u8 {
        self.score
    }

    /// The hashes of the candidate paths (what an index of candidates is keyed on).
    pub(crate) fn candidate_hashes(&self) -> impl Iterator<Item = u64> + '_ {
        self.entries().map(|(hash, _)| hash)
    }

    pub(crate) fn matches(&self, query: &Query<'_>) -> bool {
        self.entries().any(|(hash, path)| {
            (hash == query.hash && path == query.target)
                || query.pyc_hash.is_some_and(|pyc| {
                    hash == pyc
                        && path.len() == query.target.len() + 1
                        && path.ends_with('c')
                        && &path[..query.target.len()] == query.target
                })
        })
    }
}

/// A target prepared for hash comparisons.
pub(crate) struct Query<'t> {
    target: &'t str,
    pub(crate) hash: u64,
    /// Hash of `target + "c"`, when the target ends in `.py`.
    pub(crate) pyc_hash: Option<u64>,
}

impl<'t> Query<'t> {
    pub(crate) fn new(target: &'t str) -> Self {
        // Hash the concatenation itself: FxHasher is not streaming-invariant, so hashing
        // `target` then `"c"` in two writes would differ from hashing the candidate. A
        // stack buffer holds it for paths of ordinary length.
        let pyc_hash = target.ends_with(".py").then(|| {
            let mut buf = [0u8; 512];
            match buf.get_mut(..target.len() + 1) {
                Some(joined) => {
                    joined[..target.len()].copy_from_slice(target.as_bytes());
                    joined[target.len()] = b'c';
                    hash_bytes(joined)
                }
                None => hash_str(&format!("{target}c")),
            }
        });
        Query {
            target,
            hash: hash_str(target),
            pyc_hash,
        }
    }
}

/// Keeps the first match with the lowest score (L4.6). Returns true once a score-0 match
/// has ended the scan.
fn offer(best: &mut Option<(u8, String)>, facts: &EntryFacts) -> bool {
    let better = match best {
        None => true,
        Some((score, _)) => facts.score < *score,
    };
    if better {
        *best = Some((facts.score, facts.preferred().to_string()));
    }
    facts.score == 0
}

/// L4 read literally: every entry read on every call.
pub fn reference_scan(
    target: &str,
    modules: &dyn ModuleTable,
    stats: &mut ScanStats,
) -> Option<String> {
    stats.scans += 1;
    let mut best: Option<(u8, String)> = None;
    let mut aborted = false;
    modules.for_each_entry(&mut |entry| {
        if !entry.key_is_str() {
            aborted = true;
            return ControlFlow::Break(());
        }
        if entry.value_is_none() {
            return ControlFlow::Continue(());
        }
        let read = entry.read();
        stats.entries_read += 1;
        stats.hook_only_attrs += read.attrs.hook_only_count();
        let facts = EntryFacts::from_read(&read);
        let matched = facts.candidates().any(|c| candidate_matches(c, target));
        if matched && offer(&mut best, &facts) {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    if aborted {
        stats.non_str_key_aborts += 1;
        return None;
    }
    best.map(|(_, name)| name)
}

struct Slot {
    stamp: Stamp,
    facts: EntryFacts,
    seen: u64,
}

/// The cached scanner (see the module documentation).
#[derive(Default)]
pub struct ScanCache {
    slots: FxHashMap<EntryId, Slot>,
    generation: u64,
}

impl ScanCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries whose facts are cached.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Drops everything cached (and the objects the stamps keep alive).
    pub fn clear(&mut self) {
        self.slots.clear();
    }

    /// L4 with cached per-entry facts; same answers as [`reference_scan`].
    pub fn scan(
        &mut self,
        target: &str,
        modules: &dyn ModuleTable,
        stats: &mut ScanStats,
    ) -> Option<String> {
        stats.scans += 1;
        self.generation += 1;
        let generation = self.generation;
        let query = Query::new(target);
        let slots = &mut self.slots;
        let mut best: Option<(u8, String)> = None;
        let mut aborted = false;
        // Once decided, the walk goes on only to mark the entries still present, so the
        // sweep below can drop the others.
        let mut decided = false;
        let mut marked = 0usize;
        modules.for_each_entry(&mut |entry| {
            if !entry.key_is_str() {
                if !decided {
                    decided = true;
                    aborted = true;
                }
                return ControlFlow::Continue(());
            }
            if entry.value_is_none() {
                return ControlFlow::Continue(());
            }
            let id = entry.id();
            if decided {
                if let Some(slot) = slots.get_mut(&id) {
                    slot.seen = generation;
                    marked += 1;
                }
                return ControlFlow::Continue(());
            }
            let slot = match slots.entry(id) {
                Entry::Occupied(occupied) => {
                    let slot = occupied.into_mut();
                    if !entry.is_current(&slot.stamp) {
                        let read = entry.read();
                        stats.entries_read += 1;
                        stats.hook_only_attrs += read.attrs.hook_only_count();
                        slot.facts = EntryFacts::from_read(&read);
                        slot.stamp = read.stamp;
                    }
                    slot
                }
                Entry::Vacant(vacant) => {
                    let read = entry.read();
                    stats.entries_read += 1;
                    stats.hook_only_attrs += read.attrs.hook_only_count();
                    vacant.insert(Slot {
                        facts: EntryFacts::from_read(&read),
                        stamp: read.stamp,
                        seen: generation,
                    })
                }
            };
            slot.seen = generation;
            marked += 1;
            if slot.facts.matches(&query) && offer(&mut best, &slot.facts) {
                decided = true;
            }
            ControlFlow::Continue(())
        });
        if slots.len() > marked {
            slots.retain(|_, slot| slot.seen == generation);
        }
        if aborted {
            stats.non_str_key_aborts += 1;
            return None;
        }
        best.map(|(_, name)| name)
    }
}
