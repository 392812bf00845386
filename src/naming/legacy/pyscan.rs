//! L4 over the real `sys.modules`: an incremental scanner that gives exactly the answers of
//! [`reference_scan`](super::scan::reference_scan) without re-reading every entry.
//!
//! # Why a second scanner
//!
//! [`ScanCache`] caches what it read per entry, but every lookup still walks a fresh
//! snapshot of `sys.modules` (a `PyDict_Next` walk with reference counting), probes a hash
//! map per entry and checks each entry's stamp through several CPython calls. An import of
//! module *n* then costs O(n) of that work, and an import-heavy program O(n²).
//!
//! CPython 3.11 has no dict watchers, so nothing tells the recorder that some module's
//! `__file__` was reassigned or an entry replaced: a lookup has to look at every entry that
//! precedes its answer. What this scanner does is make that look as cheap as memory allows:
//!
//! - **Positions.** It mirrors the dict's entry array (CPython 3.11 layout, checked against
//!   `PyDict_Next` whenever the array is reallocated): for each position, the `(key,
//!   value)` pair it last read there. A position whose pair is unchanged costs two word
//!   compares; appends, deletions (a cleared slot) and replacements (a new value word) are
//!   seen on the spot. No snapshot is built and no reference count touched.
//! - **Watches.** A read records the words of memory it depended on ([`PyStamp`]): the
//!   version tag of each dict it looked into (3.11 gives every mutation a new, increasing
//!   tag), the dict slot of objects whose `__dict__` can be rebound, and the type and MRO
//!   words when class attributes were consulted. An ordinary module costs three: its
//!   dict's tag, its spec's dict slot, its spec dict's tag, kept inline in the position's
//!   record. Checking an entry is reading those words; nothing is called.
//! - **Index.** Candidate paths are indexed by hash, so the entries matching the target are
//!   known without comparing strings entry by entry; only the walk's validity checks touch
//!   every position, and the walk stops at the first decisive position (a score-0 match or
//!   a non-`str` key, L4.2/L4.6).
//! - **Two phases.** The walk runs no Python code and allocates no Python object, so the
//!   dict cannot change under it; it only notes the positions whose cached facts are not
//!   current. Those are settled afterwards (reads may allocate, and a garbage collection
//!   may run finalizers): when only instance dicts changed, by repeating the read's own
//!   lookups in them and finding the same objects (a *deep check*: a module body defining
//!   functions, a spec's `_initializing` flag, a package gaining a submodule), otherwise by
//!   reading the entry again. The answer is the first decisive position among both, which
//!   is what the reference would have found walking a snapshot taken when the walk ran.
//! - **Moved entries.** importlib pops a module and re-inserts it once its body has run;
//!   a pair cleared at one position and found again further on in the same walk keeps
//!   what was cached for it.
//! - **Moments.** Resolvers that look up the same target during one tracer callback (the
//!   label resolver and the filter engine's own resolver, spec L7; the shadow engine's)
//!   share one scan: see [`PyScanner::begin_moment`].
//!
//! If the layout check fails (an interpreter that is not the 3.11 layout), the scanner
//! falls back to [`ScanCache`] for good.
//!
//! On CPython 3.12+ none of the walk runs while the legacy engine's dict watcher is
//! available: the scanner delegates to `wscan.rs`, which learns what changed from the
//! watcher and reads only that (the walk stays as the fallback when no watcher id can be
//! had).
//!
//! `tests/naming_pysys.rs` runs this scanner against the reference scan over random
//! sequences of changes to the real `sys.modules` (insertions, deletions, re-insertions,
//! replacements, aliases, non-`str` keys, `None` values, attribute and `__spec__`
//! changes, `__class__` and `__dict__` assignment, dict resizes, `popitem`).

use pyo3::ffi;
use pyo3::prelude::*;
use rustc_hash::FxHashMap;

use super::multi::Multi;
use super::scan::{EntryFacts, Query, ScanCache, ScanStats};
use crate::naming::python::{DeepCheck, PyEntry, PyStamp, PySysModules, Watch};
use crate::naming::table::{ModuleEntry, StampInner};

/// What the scanner knows about one position of the entry array.
#[derive(Clone, Copy)]
struct Hot {
    /// The pair last read at this position (`0, 0`: nothing known).
    key: usize,
    value: usize,
    /// The entry's first watches, inline (an ordinary module has three); unused slots
    /// hold [`Watch::always`].
    inline: [Watch; INLINE],
    /// The watches beyond those: `arena[start..start + len]`.
    start: u32,
    len: u16,
    kind: Kind,
    /// L4.6 score of the preferred name (entries only).
    score: u8,
    /// The read invoked a descriptor: never current.
    volatile: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unknown,
    /// Value `None`: skipped (L4.2).
    NoneValue,
    /// Key not a `str`: aborts the scan (L4.2).
    NotStrKey,
    Entry,
}

/// Watches stored in [`Hot`] itself: an ordinary module needs three (its dict's version,
/// its spec's dict slot and its spec dict's version).
const INLINE: usize = 3;

const UNKNOWN: Hot = Hot {
    key: 0,
    value: 0,
    inline: [Watch::always(); INLINE],
    start: 0,
    len: 0,
    kind: Kind::Unknown,
    score: 1,
    volatile: false,
};

/// The part of a position's state the walk never touches.
struct Cold {
    facts: Option<EntryFacts>,
    /// Deep checks of the instance dicts the read looked into.
    deep: Vec<DeepCheck>,
    /// Keeps the pair and every watched object alive, so no address is reused while the
    /// watches exist.
    _keep: Vec<Py<PyAny>>,
}

/// Shape of the entry array when the positions were laid out.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
struct Geometry {
    dict: usize,
    keys: usize,
    log2_size: u8,
    log2_index_bytes: u8,
    kind: u8,
}

/// A dict's entry array as CPython 3.11 lays it out (`Include/internal/pycore_dict.h`).
struct RawEntries {
    geometry: Geometry,
    entries: *const u8,
    stride: usize,
    nentries: usize,
}

impl RawEntries {
    /// # Safety
    /// `dict` is a live dict (or subclass) and the GIL is held.
    unsafe fn of(dict: *mut ffi::PyObject) -> Option<RawEntries> {
        let d = dict as *mut ffi::PyDictObject;
        if !(*d).ma_values.is_null() || (*d).ma_keys.is_null() {
            return None; // a split table: never sys.modules
        }
        let keys = (*d).ma_keys as *const u8;
        // struct _dictkeysobject { Py_ssize_t dk_refcnt; uint8_t dk_log2_size;
        //   uint8_t dk_log2_index_bytes; uint8_t dk_kind; uint32_t dk_version;
        //   Py_ssize_t dk_usable; Py_ssize_t dk_nentries; char dk_indices[]; }
        let log2_size = *keys.add(8);
        let log2_index_bytes = *keys.add(9);
        let kind = *keys.add(10);
        let nentries = *(keys.add(24) as *const isize);
        if log2_index_bytes > 40 || nentries < 0 || nentries > (1isize << log2_size.min(40)) {
            return None;
        }
        // DICT_KEYS_GENERAL entries are {hash, key, value}; DICT_KEYS_UNICODE {key, value}.
        let (stride, key_offset) = match kind {
            0 => (24, 8),
            1 => (16, 0),
            _ => return None,
        };
        Some(RawEntries {
            geometry: Geometry {
                dict: dict as usize,
                keys: keys as usize,
                log2_size,
                log2_index_bytes,
                kind,
            },
            entries: keys.add(32 + (1usize << log2_index_bytes) + key_offset),
            stride,
            nentries: nentries as usize,
        })
    }

    /// The `(key, value)` words at `pos` (`value == 0`: a deleted position).
    #[inline]
    fn pair(&self, pos: usize) -> (usize, usize) {
        debug_assert!(pos < self.nentries);
        // SAFETY: pos < nentries, inside the live keys object's entry array.
        unsafe {
            let entry = self.entries.add(pos * self.stride) as *const usize;
            (*entry, *entry.add(1))
        }
    }

    /// Whether the layout reading agrees with `PyDict_Next` on this dict.
    ///
    /// # Safety
    /// As for [`RawEntries::of`].
    unsafe fn agrees_with_pydict_next(&self, dict: *mut ffi::PyObject) -> bool {
        let mut pos: ffi::Py_ssize_t = 0;
        let mut key = std::ptr::null_mut();
        let mut value = std::ptr::null_mut();
        let mut raw = (0..self.nentries)
            .map(|p| (p, self.pair(p)))
            .filter(|(_, (_, v))| *v != 0);
        while ffi::PyDict_Next(dict, &mut pos, &mut key, &mut value) != 0 {
            match raw.next() {
                Some((p, (k, v)))
                    if p + 1 == pos as usize && k == key as usize && v == value as usize => {}
                _ => return false,
            }
        }
        raw.next().is_none()
    }
}

/// A position phase 1 could not vouch for.
enum Pending {
    /// Same pair, some watch failed.
    Recheck(usize),
    /// A pair not cached anywhere.
    Fresh(Fresh),
}

/// An entry to read during phase 2.
struct Fresh {
    pos: usize,
    key: Py<PyAny>,
    value: Py<PyAny>,
}

impl Fresh {
    /// New references to the pair at `pos`.
    ///
    /// # Safety
    /// The GIL is held and `key` and `value` are live objects.
    unsafe fn new(py: Python<'_>, pos: usize, key: usize, value: usize) -> Fresh {
        Fresh {
            pos,
            key: Bound::from_borrowed_ptr(py, key as *mut ffi::PyObject).unbind(),
            value: Bound::from_borrowed_ptr(py, value as *mut ffi::PyObject).unbind(),
        }
    }
}

/// The incremental scanner (see the module documentation). One per `sys.modules` reader,
/// shared by every resolver of the session.
#[derive(Default)]
pub struct PyScanner {
    /// `Some(false)`: the layout check failed once; [`ScanCache`] is used from then on.
    layout_ok: Option<bool>,
    geometry: Geometry,
    /// Keeps the dict `geometry` refers to alive (so its address is not reused).
    dict: Option<Py<PyAny>>,
    hot: Vec<Hot>,
    cold: Vec<Option<Cold>>,
    arena: Vec<Watch>,
    arena_garbage: usize,
    /// Candidate-path hash -> positions whose cached facts have such a candidate.
    index: Multi<u64>,
    fallback: ScanCache,
    moment: bool,
    memo: Vec<(String, Option<String>)>,
    /// CPython 3.12+: the scanner the dict watcher keeps up to date (`wscan.rs`); the walk
    /// below is used only when it has no watcher.
    #[cfg(Py_3_12)]
    watched: super::wscan::WatchedScanner,
}

impl PyScanner {
    /// Starts a moment: until [`end_moment`](Self::end_moment), lookups of a target already
    /// scanned during the moment get that scan's answer. The tracer opens one per callback
    /// that names a code object; no program code runs inside it, so every resolver sees
    /// `sys.modules` as it was when the callback started.
    pub fn begin_moment(&mut self) {
        self.moment = true;
        self.memo.clear();
    }

    /// Ends the moment opened by [`begin_moment`](Self::begin_moment).
    pub fn end_moment(&mut self) {
        self.moment = false;
        self.memo.clear();
    }

    /// Drops everything cached (and the objects it keeps alive).
    pub fn release(&mut self) {
        let layout_ok = self.layout_ok;
        #[cfg(Py_3_12)]
        let watched = std::mem::take(&mut self.watched).release();
        *self = PyScanner::default();
        self.layout_ok = layout_ok;
        #[cfg(Py_3_12)]
        {
            self.watched = watched;
        }
    }

    /// L4 for a normalised `target` over `sys.modules` as it is now.
    pub fn scan(
        &mut self,
        target: &str,
        table: &PySysModules,
        stats: &mut ScanStats,
    ) -> Option<String> {
        if self.moment {
            if let Some((_, answer)) = self.memo.iter().find(|(t, _)| t == target) {
                stats.shared_answers += 1;
                return answer.clone();
            }
        }
        let started = std::time::Instant::now();
        let answer = Python::with_gil(|py| self.scan_now(py, target, table, stats));
        stats.scan_ns += started.elapsed().as_nanos() as u64;
        if self.moment {
            self.memo.push((target.to_string(), answer.clone()));
        }
        answer
    }

    fn scan_now(
        &mut self,
        py: Python<'_>,
        target: &str,
        table: &PySysModules,
        stats: &mut ScanStats,
    ) -> Option<String> {
        if self.layout_ok == Some(false) {
            return self.fallback.scan(target, table, stats);
        }
        // SAFETY: GIL held; sys.modules is looked up in the sys module's dict (no hook).
        let modules = unsafe { ffi::PySys_GetObject(c"modules".as_ptr()) };
        if modules.is_null() || unsafe { ffi::PyDict_Check(modules) } == 0 {
            stats.scans += 1;
            return None;
        }
        #[cfg(Py_3_12)]
        if let Some(answer) = self.watched.scan(py, modules, target, stats) {
            return answer;
        }
        // SAFETY: a live dict, GIL held.
        let Some(raw) = (unsafe { RawEntries::of(modules) }) else {
            self.give_up();
            return self.fallback.scan(target, table, stats);
        };
        // Objects released during the scan are dropped only at its end: a release can run
        // a finalizer, and program code must not run while the walk relies on `raw`.
        let mut graveyard: Vec<Cold> = Vec::new();
        if raw.geometry != self.geometry || raw.nentries < self.hot.len() {
            // SAFETY: as above.
            if !unsafe { raw.agrees_with_pydict_next(modules) } {
                self.give_up();
                return self.fallback.scan(target, table, stats);
            }
            self.layout_ok = Some(true);
            // SAFETY: `modules` is live.
            self.relayout(
                &raw,
                unsafe { Bound::from_borrowed_ptr(py, modules) },
                &mut graveyard,
            );
        }
        if self.hot.len() < raw.nentries {
            self.hot.resize(raw.nentries, UNKNOWN);
            self.cold.resize_with(raw.nentries, || None);
        }
        stats.scans += 1;
        let query = Query::new(target);
        let matches = self.cached_matches(&query);

        // Phase 1: walk positions in order. Nothing here calls into CPython or allocates a
        // Python object, so the dict cannot change during the walk.
        let mut pending: Vec<Pending> = Vec::new();
        // Pairs whose position was cleared during this walk; importlib pops a module and
        // re-inserts it once its body has run, so the pair usually shows up again further on.
        let mut moved: FxHashMap<(usize, usize), (Hot, Cold)> = FxHashMap::default();
        let mut decided: Option<(usize, Option<String>)> = None;
        let mut first_score1: Option<usize> = None;
        let mut next_match = 0usize;
        for pos in 0..raw.nentries {
            let (key, value) = raw.pair(pos);
            let hot = self.hot[pos];
            if value == 0 {
                if hot.kind != Kind::Unknown {
                    let detached = self.detach(pos);
                    moved.insert((detached.0.key, detached.0.value), detached);
                }
                continue;
            }
            let mut arrived = false;
            if hot.kind == Kind::Unknown || hot.key != key || hot.value != value {
                if hot.kind != Kind::Unknown {
                    let detached = self.detach(pos);
                    moved.insert((detached.0.key, detached.0.value), detached);
                }
                match moved.remove(&(key, value)) {
                    Some((hot, cold)) => {
                        self.attach(pos, hot, cold);
                        stats.moved += 1;
                        arrived = true;
                    }
                    None => {
                        // SAFETY: live objects in a live dict; new references, no code runs.
                        let fresh = unsafe { Fresh::new(py, pos, key, value) };
                        pending.push(Pending::Fresh(fresh));
                        continue;
                    }
                }
            }
            let hot = self.hot[pos];
            // No short-circuit over the watches: independent loads overlap better than
            // loads behind unpredictable branches.
            let mut holds = hot.inline[0].holds() & hot.inline[1].holds() & hot.inline[2].holds();
            if hot.len > 0 {
                holds &= self.spilled(&hot).iter().all(Watch::holds);
            }
            if !holds || hot.volatile {
                pending.push(Pending::Recheck(pos));
                continue;
            }
            match hot.kind {
                Kind::NoneValue | Kind::Unknown => {}
                Kind::NotStrKey => {
                    decided = Some((pos, None));
                    break;
                }
                Kind::Entry => {
                    while next_match < matches.len() && (matches[next_match] as usize) < pos {
                        next_match += 1;
                    }
                    let matched = if arrived {
                        self.facts(pos).is_some_and(|f| f.matches(&query))
                    } else {
                        matches.get(next_match) == Some(&(pos as u32))
                    };
                    if matched {
                        if hot.score == 0 {
                            decided = Some((pos, Some(self.preferred(pos))));
                            break;
                        }
                        first_score1.get_or_insert(pos);
                    }
                }
            }
        }
        for (hot, cold) in moved.into_values() {
            self.arena_garbage += hot.len as usize;
            graveyard.push(cold);
        }

        // Phase 2: settle what phase 1 could not vouch for, in order: a deep check when
        // only instance dicts changed, a read otherwise. Every such position precedes the
        // decisive one found by the walk (if any).
        let mut late_decided: Option<(usize, Option<String>)> = None;
        let mut late_score1: Option<(usize, String)> = None;
        for item in pending {
            let (pos, kind) = match item {
                Pending::Recheck(pos) => {
                    if self.revalidate(pos) {
                        stats.deep_checks += 1;
                        (pos, self.hot[pos].kind)
                    } else {
                        let hot = self.hot[pos];
                        // SAFETY: the cached state keeps both objects alive.
                        let fresh = unsafe { Fresh::new(py, pos, hot.key, hot.value) };
                        self.forget(pos, &mut graveyard);
                        self.read_into(py, fresh, stats)
                    }
                }
                Pending::Fresh(fresh) => self.read_into(py, fresh, stats),
            };
            if late_decided.is_some() {
                continue; // settled anyway, so the next lookup finds it cached
            }
            match kind {
                Kind::NotStrKey => late_decided = Some((pos, None)),
                Kind::Entry => {
                    let score = self.hot[pos].score;
                    if let Some(facts) = self.facts(pos).filter(|f| f.matches(&query)) {
                        if score == 0 {
                            late_decided = Some((pos, Some(facts.preferred().to_string())));
                        } else if late_score1.is_none() {
                            late_score1 = Some((pos, facts.preferred().to_string()));
                        }
                    }
                }
                Kind::NoneValue | Kind::Unknown => {}
            }
        }
        self.compact_arena();
        drop(graveyard);

        let decided = match (decided, late_decided) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        };
        if decided.as_ref().is_some_and(|(_, a)| a.is_none()) {
            stats.non_str_key_aborts += 1;
        }
        match decided {
            Some((_, answer)) => answer,
            None => {
                // No decisive position: the first score-1 match, if any.
                let cached = first_score1.map(|pos| (pos, self.preferred(pos)));
                match (cached, late_score1) {
                    (Some(a), Some(b)) => Some(if b.0 < a.0 { b.1 } else { a.1 }),
                    (a, b) => a.or(b).map(|(_, name)| name),
                }
            }
        }
    }

    fn facts(&self, pos: usize) -> Option<&EntryFacts> {
        self.cold[pos].as_ref().and_then(|c| c.facts.as_ref())
    }

    /// After some watches of `pos` failed: true (and the watches renewed) when every
    /// failed watch is an instance dict's version whose recorded lookups still find the
    /// same objects. Runs dict lookups, so only outside the walk.
    fn revalidate(&mut self, pos: usize) -> bool {
        let hot = self.hot[pos];
        if hot.volatile || hot.kind != Kind::Entry {
            return false;
        }
        let Some(cold) = self.cold[pos].as_ref() else {
            return false;
        };
        let watches = hot.inline.iter().chain(self.spilled(&hot));
        // SAFETY: GIL held; `cold` keeps the dict, keys and results alive.
        let Some(renew) = (unsafe { DeepCheck::renewable(watches, &cold.deep) }) else {
            return false;
        };
        for i in renew {
            if i < INLINE {
                self.hot[pos].inline[i].renew();
            } else {
                self.arena[hot.start as usize + i - INLINE].renew();
            }
        }
        true
    }

    /// The watches of `hot` beyond the inline ones.
    fn spilled(&self, hot: &Hot) -> &[Watch] {
        &self.arena[hot.start as usize..hot.start as usize + hot.len as usize]
    }

    fn give_up(&mut self) {
        self.release();
        self.layout_ok = Some(false);
    }

    /// Positions whose cached facts match the query, in order (not yet validated).
    fn cached_matches(&self, query: &Query<'_>) -> Vec<u32> {
        let mut found: Vec<u32> = Vec::new();
        for hash in std::iter::once(query.hash).chain(query.pyc_hash) {
            for &pos in self.index.get(&hash) {
                let matched = self.cold[pos as usize]
                    .as_ref()
                    .and_then(|c| c.facts.as_ref())
                    .is_some_and(|f| f.matches(query));
                if matched {
                    found.push(pos);
                }
            }
        }
        found.sort_unstable();
        found.dedup();
        found
    }

    fn preferred(&self, pos: usize) -> String {
        self.cold[pos]
            .as_ref()
            .and_then(|c| c.facts.as_ref())
            .map(|f| f.preferred().to_string())
            .unwrap_or_default()
    }

    /// Drops what is cached for `pos` (objects are released by the caller, after the walk).
    fn forget(&mut self, pos: usize, graveyard: &mut Vec<Cold>) {
        let (hot, cold) = self.detach(pos);
        self.arena_garbage += hot.len as usize;
        graveyard.push(cold);
    }

    /// Takes what is cached for `pos` out of the positions and the index (its watches stay
    /// in the arena).
    fn detach(&mut self, pos: usize) -> (Hot, Cold) {
        let hot = std::mem::replace(&mut self.hot[pos], UNKNOWN);
        let cold = self.cold[pos].take().unwrap_or(Cold {
            facts: None,
            deep: Vec::new(),
            _keep: Vec::new(),
        });
        if let Some(facts) = &cold.facts {
            for hash in facts.candidate_hashes() {
                self.index.remove(&hash, pos as u32);
            }
        }
        (hot, cold)
    }

    /// Puts a detached state at `pos`.
    fn attach(&mut self, pos: usize, hot: Hot, cold: Cold) {
        if let Some(facts) = &cold.facts {
            for hash in facts.candidate_hashes() {
                self.index.push_unique(hash, pos as u32);
            }
        }
        self.hot[pos] = hot;
        self.cold[pos] = Some(cold);
    }

    /// Reads one entry hook-free and caches it at its position. Returns the position and
    /// the kind of entry found.
    fn read_into(&mut self, py: Python<'_>, item: Fresh, stats: &mut ScanStats) -> (usize, Kind) {
        let Fresh { pos, key, value } = item;
        let key_addr = key.as_ptr() as usize;
        let value_addr = value.as_ptr() as usize;
        let entry = PyEntry {
            py,
            key: key.bind(py),
            value: value.bind(py),
        };
        let (kind, score, facts, mut keep, mut watches, mut volatile, deep) = if !entry.key_is_str()
        {
            (
                Kind::NotStrKey,
                1,
                None,
                Vec::new(),
                Vec::new(),
                false,
                Vec::new(),
            )
        } else if entry.value_is_none() {
            (
                Kind::NoneValue,
                1,
                None,
                Vec::new(),
                Vec::new(),
                false,
                Vec::new(),
            )
        } else {
            let read = entry.read();
            stats.entries_read += 1;
            stats.hook_only_attrs += read.attrs.hook_only_count();
            let facts = EntryFacts::from_read(&read);
            let score = facts.score();
            let (keep, watches, volatile, deep) = match read.stamp.inner {
                StampInner::Python(stamp) => stamp.into_parts(),
                StampInner::Version(_) => (Vec::new(), Vec::new(), true, Vec::new()),
            };
            (
                Kind::Entry,
                score,
                Some(facts),
                keep,
                watches,
                volatile,
                deep,
            )
        };
        // The pair itself stays alive with the cached state, whatever the kind.
        keep.push(key);
        keep.push(value);
        if self.hot[pos].kind != Kind::Unknown {
            let mut graveyard = Vec::new();
            self.forget(pos, &mut graveyard);
        }
        let spill = watches.len().saturating_sub(INLINE);
        if spill > u16::MAX as usize || self.arena.len() + spill > u32::MAX as usize {
            // Not worth watching: re-read on every lookup.
            watches.clear();
            volatile = true;
        }
        let mut inline = [Watch::always(); INLINE];
        for (slot, watch) in inline.iter_mut().zip(&watches) {
            *slot = *watch;
        }
        let start = self.arena.len() as u32;
        let spilled = watches.get(INLINE..).unwrap_or_default();
        self.arena.extend_from_slice(spilled);
        let hot = Hot {
            key: key_addr,
            value: value_addr,
            inline,
            start,
            len: spilled.len() as u16,
            kind,
            score,
            volatile,
        };
        self.attach(
            pos,
            hot,
            Cold {
                facts,
                deep,
                _keep: keep,
            },
        );
        (pos, kind)
    }

    /// Rebuilds the positions after the entry array was reallocated (a resize, or another
    /// dict as `sys.modules`): cached pairs move to wherever they are now.
    fn relayout(&mut self, raw: &RawEntries, dict: Bound<'_, PyAny>, graveyard: &mut Vec<Cold>) {
        let mut by_pair: FxHashMap<(usize, usize), (Hot, Cold)> = FxHashMap::default();
        let old_arena = std::mem::take(&mut self.arena);
        for (hot, cold) in self.hot.drain(..).zip(self.cold.drain(..)) {
            if let (Kind::NoneValue | Kind::NotStrKey | Kind::Entry, Some(cold)) = (hot.kind, cold)
            {
                by_pair.insert((hot.key, hot.value), (hot, cold));
            }
        }
        self.index.clear();
        self.arena_garbage = 0;
        self.hot = vec![UNKNOWN; raw.nentries];
        self.cold = (0..raw.nentries).map(|_| None).collect();
        for pos in 0..raw.nentries {
            let pair = raw.pair(pos);
            if pair.1 == 0 {
                continue;
            }
            if let Some((mut hot, cold)) = by_pair.remove(&pair) {
                let start = self.arena.len() as u32;
                let range = hot.start as usize..hot.start as usize + hot.len as usize;
                self.arena.extend_from_slice(&old_arena[range]);
                hot.start = start;
                if let Some(facts) = &cold.facts {
                    for hash in facts.candidate_hashes() {
                        self.index.push(hash, pos as u32);
                    }
                }
                self.hot[pos] = hot;
                self.cold[pos] = Some(cold);
            }
        }
        self.geometry = raw.geometry;
        if let Some(old) = self.dict.replace(dict.unbind()) {
            graveyard.push(Cold {
                facts: None,
                deep: Vec::new(),
                _keep: vec![old],
            });
        }
        graveyard.extend(by_pair.into_values().map(|(_, cold)| cold));
    }

    /// Rewrites the watch arena without the watches of forgotten positions once they make
    /// up most of it.
    fn compact_arena(&mut self) {
        if self.arena_garbage < 1024 || self.arena_garbage * 2 < self.arena.len() {
            return;
        }
        let mut arena = Vec::with_capacity(self.arena.len() - self.arena_garbage);
        for hot in self.hot.iter_mut().filter(|h| h.kind != Kind::Unknown) {
            let range = hot.start as usize..hot.start as usize + hot.len as usize;
            hot.start = arena.len() as u32;
            arena.extend_from_slice(&self.arena[range]);
        }
        self.arena = arena;
        self.arena_garbage = 0;
    }
}

/// The scanner is the legacy engine's state beside a [`PySysModules`].
impl crate::naming::SysModulesState for PyScanner {
    fn release(&mut self) {
        PyScanner::release(self);
    }

    fn begin_moment(&mut self) {
        PyScanner::begin_moment(self);
    }

    fn end_moment(&mut self) {
        PyScanner::end_moment(self);
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// L4 for `target` by the scanner kept beside `modules`, when `modules` is the real
/// `sys.modules`. `None`: no shared scanner (another table, or a lookup made while another
/// one is under way — a finalizer run by a read that reached the recorder again), and the
/// resolver uses its own [`ScanCache`].
pub(crate) fn shared_scan(
    modules: &dyn crate::naming::ModuleTable,
    target: &str,
    stats: &mut ScanStats,
) -> Option<Option<String>> {
    let table = modules.py_sys_modules()?;
    let mut state = table.engine_state().try_borrow_mut().ok()?;
    let scanner = state.as_mut()?.as_any_mut().downcast_mut::<PyScanner>()?;
    Some(scanner.scan(target, table, stats))
}

// Stamp parts only the scanner uses (the stamps are made by `naming::python`).

/// Watch positions below 64, as a bit set (a deep check runs on every lookup that follows
/// a module body's run, so its answer is kept off the heap).
pub(crate) struct Positions(u64);

impl Iterator for Positions {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let i = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(i)
    }
}

impl DeepCheck {
    /// The positions of `watches` that no longer hold but that one of `deep`'s checks,
    /// repeated, proves unchanged: those watches can be renewed. `None` when some changed
    /// watch is not covered by a check, or its check finds something else (or, in a stamp
    /// of more than 64 watches, lies past the 64th: the entry is then read again, which is
    /// exact too).
    ///
    /// # Safety
    /// As [`DeepCheck::repeat`]: the GIL is held and the stamp the checks came from is alive.
    pub(crate) unsafe fn renewable<'a>(
        watches: impl Iterator<Item = &'a Watch>,
        deep: &[DeepCheck],
    ) -> Option<Positions> {
        let mut renew = 0u64;
        for (i, watch) in watches.enumerate() {
            if watch.holds() {
                continue;
            }
            let check = deep
                .iter()
                .find(|d| (d.watch as usize..(d.watch + d.words) as usize).contains(&i))?;
            if i >= 64 || !check.repeat() {
                return None;
            }
            renew |= 1 << i;
        }
        Some(Positions(renew))
    }

    /// Repeats the lookups; true when every one finds what it found before. May run code
    /// only as a dict lookup can (the `__eq__` of a `str` subclass key with a colliding
    /// hash), so never call it where program code must not run.
    ///
    /// # Safety
    /// The GIL is held and the stamp this check came from is alive.
    pub(crate) unsafe fn repeat(&self) -> bool {
        self.lookups.iter().all(|&(key, result)| {
            let found = ffi::PyDict_GetItemWithError(
                self.dict as *mut ffi::PyObject,
                key as *mut ffi::PyObject,
            );
            if found.is_null() && !ffi::PyErr_Occurred().is_null() {
                ffi::PyErr_Clear();
                return false;
            }
            found as usize == result
        })
    }
}

impl PyStamp {
    /// The kept objects, the watches, the volatile flag and the deep checks, for the
    /// scanner, which stores them its own way.
    pub(crate) fn into_parts(self) -> (Vec<Py<PyAny>>, Vec<Watch>, bool, Vec<DeepCheck>) {
        (self.keep, self.watches, self.volatile, self.deep)
    }
}

/// The word [`Watch::always`] watches: never written.
static ALWAYS_WORD: usize = 0;

impl Watch {
    /// A watch that always holds (fills unused inline watch slots).
    pub(crate) const fn always() -> Watch {
        Watch {
            addr: &ALWAYS_WORD as *const usize,
            want: 0,
        }
    }

    /// Accepts the word's current value (after a deep check proved it harmless).
    pub(crate) fn renew(&mut self) {
        // SAFETY: as for `holds`: the owner keeps the watched object alive, GIL held.
        self.want = unsafe { *self.addr };
    }
}
