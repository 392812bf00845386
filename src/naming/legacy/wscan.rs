//! L4 over the real `sys.modules` on CPython 3.12+: a lookup reads only what changed since
//! the last one, with the answers of [`reference_scan`](super::scan::reference_scan).
//!
//! # What it keeps
//!
//! A mirror of `sys.modules`: for each entry, in the dict's order, the pair (key, value),
//! what the scan derived from it ([`EntryFacts`]: candidate paths, preferred name, score)
//! and the stamp of that read (the words it depended on, the lookups it made in instance
//! dicts). Order is a sequence number given when the entry arrived: a dict appends new keys
//! and keeps a replaced value where it was, so "arrived earlier" is "comes first in
//! iteration". An index maps candidate-path hashes to entries, and the non-`str` keys are
//! kept ordered apart.
//!
//! # What tells it about changes
//!
//! The dict watcher (`watch.rs`, one id for the process):
//! - `sys.modules` is the watcher's journal dict: each event (added, modified, deleted,
//!   cleared) comes with its key and new value, and is applied to the mirror. importlib's
//!   pop and re-insert of a module whose body has run keeps what was read (the pair is the
//!   same). An event it cannot apply exactly (a key that is not an exact `str` while a
//!   deleted or replaced key must be found, a `CLONED` event) makes it rebuild the mirror
//!   from the dict, keeping what it read for the pairs still there.
//! - Every dict a read looked into (module `__dict__`s, spec dicts, class dicts) is watched;
//!   a changed one is logged once, and the entries whose reads looked into it are settled:
//!   by a deep check (the read's own lookups repeated, same objects found: a module body
//!   defining functions, a spec's `_initializing` flag), else by reading the entry again.
//!
//! # What no watcher tells
//!
//! A few words a read depends on change without any dict event: the `__dict__` slot of an
//! object whose `__dict__` can be rebound (`spec.__dict__ = {...}`), the type of an object
//! whose class attributes were consulted (`__class__` assignment), a heap type's `__mro__`
//! (`__bases__` assignment), a `__slots__` member, and on 3.13 the inline values of a
//! plain instance (a `ModuleSpec`'s attributes). These are kept in one dense array and
//! polled on every lookup: for an ordinary imported module that is one word (its spec's
//! dict slot) on 3.12, and the spec's value words on 3.13. This is the part of a lookup that
//! still grows with the number of modules; it reads memory only (no call into CPython).
//!
//! # Why the answers are the reference's
//!
//! After the log is applied and the polled words checked, every entry's cached facts are
//! what a read would give now (reads that depend on nothing watchable are marked volatile
//! and re-read on every lookup), and the mirror holds the dict's pairs in the dict's order
//! (checked by size after every drain; a mismatch rebuilds it). The answer is then the
//! reference's rule applied to the facts: the first score-0 match, unless a non-`str` key
//! comes before it (the scan is aborted); otherwise the first score-1 match. Entries past
//! the answer are read too (the reference would not read them); reads run no Python code.
//!
//! If the watcher is unavailable (all ids taken, or its self-check failed), the caller
//! keeps using the walk of `pyscan.rs`.

use std::collections::BTreeSet;

use pyo3::ffi;
use pyo3::prelude::*;
use rustc_hash::FxHashMap;

use super::multi::Multi;
use super::scan::{EntryFacts, Query, ScanStats};
use super::watch::{self, Record, Registration, EVENT_ADDED, EVENT_DELETED, EVENT_MODIFIED};
use crate::naming::python::{DeepCheck, PyEntry, Watch};
use crate::naming::table::{ModuleEntry, StampInner};

/// `polled` value of a watch the watcher reports on (a dict counter).
const NOT_POLLED: u32 = u32::MAX;
/// Owner of a freed slot of the polled array.
const NO_OWNER: u32 = u32::MAX;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Not read yet (arrived, or its value was replaced, since the last read).
    Unread,
    /// Value `None`: skipped (L4.2).
    NoneValue,
    /// Key not a `str`: aborts the scan (L4.2).
    NotStrKey,
    Entry,
}

struct Entry {
    seq: u64,
    key: Py<PyAny>,
    value: Py<PyAny>,
    /// The key's hash when the key is an exact `str` (how deleted and replaced keys are
    /// found); `None` for any other key.
    key_hash: Option<isize>,
    kind: Kind,
    score: u8,
    facts: Option<EntryFacts>,
    watches: Vec<Watch>,
    /// Per watch: its slot in the polled array, or [`NOT_POLLED`].
    polled: Vec<u32>,
    /// The watches that are dict-watcher counters, with their dict (the stamp's
    /// `notified`): the dicts the read looked into, whose changes are logged.
    notified: Vec<(u32, usize)>,
    deep: Vec<DeepCheck>,
    /// The read invoked a descriptor: re-read on every lookup.
    volatile: bool,
    /// Settle this entry in the current lookup.
    suspect: bool,
    /// Keeps every watched object alive (so no address is reused while watched).
    keep: Vec<Py<PyAny>>,
}

/// The incremental scanner of CPython 3.12+ (see the module documentation).
#[derive(Default)]
pub(crate) struct WatchedScanner {
    reg: Option<Registration>,
    /// The `sys.modules` dict the mirror is of (kept alive, so its address is not reused).
    dict: Option<Py<PyAny>>,
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    live: usize,
    next_seq: u64,
    /// Hash of an exact-`str` key -> entries with such a key.
    by_key: Multi<isize>,
    /// Entries whose key is not an exact `str` (their equality with another key cannot be
    /// decided without possibly running code).
    odd_keys: usize,
    /// Watched dict -> entries whose reads looked into it.
    by_dict: Multi<usize>,
    /// Candidate-path hash -> entries with such a candidate.
    index: Multi<u64>,
    /// `(seq, entry)` of the non-`str` keys.
    non_str: BTreeSet<(u64, u32)>,
    volatile: Vec<u32>,
    polled: Polled,
    /// Entries to read or settle in the current lookup.
    work: Vec<u32>,
    /// Slots of the polled words found changed in the current lookup.
    changed: Vec<u32>,
    /// Pairs taken out of `sys.modules` in the current lookup's events, until they come
    /// back or the events are all applied.
    moved: FxHashMap<(usize, usize), u32>,
    /// Set once the watcher turned out to be unavailable.
    unavailable: bool,
}

impl WatchedScanner {
    /// L4 for a normalised `target` over `sys.modules` (`modules`, a live dict) as it is
    /// now. `None`: no watcher; the caller scans another way.
    pub(crate) fn scan(
        &mut self,
        py: Python<'_>,
        modules: *mut ffi::PyObject,
        target: &str,
        stats: &mut ScanStats,
    ) -> Option<Option<String>> {
        if self.unavailable {
            return None;
        }
        // Objects released during the lookup are dropped at its end: a release can run a
        // finalizer, which must not run while the mirror is being updated.
        let mut graveyard: Vec<Py<PyAny>> = Vec::new();
        // SAFETY: GIL held, `modules` a live dict.
        let mut rebuild = unsafe { self.attach(py, modules, &mut graveyard) }?;
        // SAFETY: GIL held.
        let drained = unsafe { self.reg.as_mut().expect("attached").drain() };
        rebuild |= !drained.complete;
        // Kept between lookups (empty, with its table): importlib's pop and re-insert of
        // each module puts one pair in it per lookup.
        let mut moved = std::mem::take(&mut self.moved);
        if !rebuild {
            for record in &drained.records {
                match record {
                    Record::Dirty(dict) => {
                        stats.dirty_dicts += 1;
                        for &idx in self.by_dict.get(dict) {
                            mark(&mut self.entries, &mut self.work, idx);
                        }
                    }
                    Record::Journal { event, key, value } => {
                        stats.journal_events += 1;
                        // SAFETY: the record holds references to key and value.
                        let applied = unsafe {
                            self.apply(py, *event, *key, *value, &mut moved, stats, &mut graveyard)
                        };
                        if !applied {
                            rebuild = true;
                            break;
                        }
                    }
                }
            }
        }
        // Pairs taken out and not put back: gone.
        for (_, idx) in moved.drain() {
            self.remove(idx, &mut graveyard);
        }
        self.moved = moved;
        // SAFETY: a live dict.
        let size = unsafe { ffi::PyDict_Size(modules) };
        if !rebuild && size != self.live as isize {
            rebuild = true;
        }
        if rebuild {
            stats.rebuilds += 1;
            // SAFETY: GIL held, `modules` a live dict.
            unsafe { self.rebuild(py, modules, &mut graveyard) };
        }
        stats.scans += 1;
        // The words no watcher reports on.
        let mut changed = std::mem::take(&mut self.changed);
        self.polled.changed(&mut changed);
        for &slot in &changed {
            mark(
                &mut self.entries,
                &mut self.work,
                self.polled.owners[slot as usize],
            );
        }
        changed.clear();
        self.changed = changed;
        stats.polled_words += self.polled.live() as u64;
        for i in 0..self.volatile.len() {
            let idx = self.volatile[i];
            mark(&mut self.entries, &mut self.work, idx);
        }
        self.settle(py, stats, &mut graveyard);
        self.compact_polled();
        let answer = self.answer(target, stats);
        drop(graveyard);
        // SAFETY: GIL held; nothing of the watcher is borrowed here.
        unsafe { watch::release_all(drained.records) };
        Some(answer)
    }

    /// Registers with the watcher for `modules`; true when the mirror must be rebuilt (a
    /// first lookup, or another dict as `sys.modules`). `None`: no watcher.
    unsafe fn attach(
        &mut self,
        py: Python<'_>,
        modules: *mut ffi::PyObject,
        graveyard: &mut Vec<Py<PyAny>>,
    ) -> Option<bool> {
        let same = self.dict.as_ref().is_some_and(|d| d.as_ptr() == modules);
        if same && self.reg.is_some() {
            return Some(false);
        }
        let ok = match self.reg.as_mut() {
            Some(reg) => reg.set_journal(modules),
            None => match Registration::new(modules) {
                Some(reg) => {
                    self.reg = Some(reg);
                    true
                }
                None => false,
            },
        };
        if !ok {
            self.unavailable = true;
            return None;
        }
        if let Some(old) = self
            .dict
            .replace(Bound::from_borrowed_ptr(py, modules).unbind())
        {
            graveyard.push(old);
        }
        Some(true)
    }

    /// Applies one event of `sys.modules` to the mirror; false when it cannot be applied
    /// exactly (the mirror is then rebuilt).
    #[allow(clippy::too_many_arguments)]
    unsafe fn apply(
        &mut self,
        py: Python<'_>,
        event: std::os::raw::c_int,
        key: *mut ffi::PyObject,
        value: *mut ffi::PyObject,
        moved: &mut FxHashMap<(usize, usize), u32>,
        stats: &mut ScanStats,
        graveyard: &mut Vec<Py<PyAny>>,
    ) -> bool {
        match event {
            EVENT_ADDED if !key.is_null() && !value.is_null() => {
                let seq = self.next_seq;
                self.next_seq += 1;
                if let Some(idx) = moved.remove(&(key as usize, value as usize)) {
                    // importlib's pop and re-insert: the same pair, now at the end.
                    self.set_seq(idx, seq);
                    stats.moved += 1;
                    return true;
                }
                let key = Bound::from_borrowed_ptr(py, key).unbind();
                let value = Bound::from_borrowed_ptr(py, value).unbind();
                self.insert(py, seq, key, value);
                true
            }
            EVENT_MODIFIED if !key.is_null() && !value.is_null() => {
                let Some(idx) = self.find(key) else {
                    return false;
                };
                let value = Bound::from_borrowed_ptr(py, value).unbind();
                self.forget(idx, graveyard);
                let entry = self.entries[idx as usize].as_mut().expect("live");
                graveyard.push(std::mem::replace(&mut entry.value, value));
                mark(&mut self.entries, &mut self.work, idx);
                true
            }
            EVENT_DELETED if !key.is_null() => {
                let Some(idx) = self.find(key) else {
                    return false;
                };
                // Kept aside until the end of the drain, in case it comes back.
                let entry = self.entries[idx as usize].as_ref().expect("live");
                let pair = (entry.key.as_ptr() as usize, entry.value.as_ptr() as usize);
                self.unlink_key(idx);
                self.live -= 1;
                if let Some(other) = moved.insert(pair, idx) {
                    self.remove(other, graveyard);
                }
                true
            }
            _ => false, // CLEARED, CLONED, or an event without its objects: rebuild
        }
    }

    /// The live entry whose key equals `key`, when that can be decided without running
    /// code: both exact `str`s, compared by text.
    unsafe fn find(&self, key: *mut ffi::PyObject) -> Option<u32> {
        if self.odd_keys > 0 || ffi::PyUnicode_CheckExact(key) == 0 {
            return None;
        }
        let hash = ffi::PyObject_Hash(key);
        if hash == -1 {
            ffi::PyErr_Clear();
            return None;
        }
        let mut found = None;
        for &idx in self.by_key.get(&hash) {
            let entry = self.entries[idx as usize].as_ref()?;
            if entry.key_hash.is_none() {
                continue;
            }
            let stored = entry.key.as_ptr();
            if stored == key || ffi::PyUnicode_Compare(stored, key) == 0 {
                found = Some(idx);
                break;
            }
        }
        if found.is_none() && !ffi::PyErr_Occurred().is_null() {
            ffi::PyErr_Clear();
        }
        found
    }

    /// A new, unread entry.
    fn insert(&mut self, _py: Python<'_>, seq: u64, key: Py<PyAny>, value: Py<PyAny>) -> u32 {
        // SAFETY: GIL held (callers); a live object.
        let key_hash = unsafe {
            let k = key.as_ptr();
            if ffi::PyUnicode_CheckExact(k) != 0 {
                let h = ffi::PyObject_Hash(k);
                if h == -1 {
                    ffi::PyErr_Clear();
                    None
                } else {
                    Some(h)
                }
            } else {
                None
            }
        };
        let entry = Entry {
            seq,
            key,
            value,
            key_hash,
            kind: Kind::Unread,
            score: 1,
            facts: None,
            watches: Vec::new(),
            polled: Vec::new(),
            notified: Vec::new(),
            deep: Vec::new(),
            volatile: false,
            suspect: false,
            keep: Vec::new(),
        };
        let idx = match self.free.pop() {
            Some(idx) => {
                self.entries[idx as usize] = Some(entry);
                idx
            }
            None => {
                self.entries.push(Some(entry));
                (self.entries.len() - 1) as u32
            }
        };
        match key_hash {
            Some(h) => self.by_key.push(h, idx),
            None => self.odd_keys += 1,
        }
        self.live += 1;
        mark(&mut self.entries, &mut self.work, idx);
        idx
    }

    /// Takes the key of `idx` out of the key map (the entry stays in the slab).
    fn unlink_key(&mut self, idx: u32) {
        let entry = self.entries[idx as usize].as_ref().expect("live");
        match entry.key_hash {
            Some(h) => self.by_key.remove(&h, idx),
            None => self.odd_keys -= 1,
        }
    }

    /// Puts a moved entry back (its key into the key map) at sequence `seq`.
    fn set_seq(&mut self, idx: u32, seq: u64) {
        let entry = self.entries[idx as usize].as_mut().expect("live");
        let old = std::mem::replace(&mut entry.seq, seq);
        let kind = entry.kind;
        match entry.key_hash {
            Some(h) => self.by_key.push(h, idx),
            None => self.odd_keys += 1,
        }
        self.live += 1;
        if kind == Kind::NotStrKey {
            self.non_str.remove(&(old, idx));
            self.non_str.insert((seq, idx));
        }
    }

    /// Drops an entry whose key is already out of the key map and not counted live.
    fn remove(&mut self, idx: u32, graveyard: &mut Vec<Py<PyAny>>) {
        self.forget(idx, graveyard);
        if let Some(entry) = self.entries[idx as usize].take() {
            graveyard.push(entry.key);
            graveyard.push(entry.value);
            self.free.push(idx);
        }
    }

    /// Drops what was read for `idx` (it becomes unread).
    fn forget(&mut self, idx: u32, graveyard: &mut Vec<Py<PyAny>>) {
        let Some(entry) = self.entries[idx as usize].as_mut() else {
            return;
        };
        if let Some(facts) = entry.facts.take() {
            for hash in facts.candidate_hashes() {
                self.index.remove(&hash, idx);
            }
        }
        for (_, dict) in entry.notified.drain(..) {
            self.by_dict.remove(&dict, idx);
        }
        for slot in entry.polled.drain(..) {
            if slot != NOT_POLLED {
                self.polled.free(slot);
            }
        }
        if entry.kind == Kind::NotStrKey {
            self.non_str.remove(&(entry.seq, idx));
        }
        if entry.volatile {
            self.volatile.retain(|&i| i != idx);
        }
        entry.watches.clear();
        entry.deep.clear();
        entry.volatile = false;
        entry.kind = Kind::Unread;
        graveyard.append(&mut entry.keep);
    }

    /// Rebuilds the mirror from the dict, in its order, keeping what was read for the pairs
    /// still there; every kept entry is settled in this lookup.
    unsafe fn rebuild(
        &mut self,
        py: Python<'_>,
        modules: *mut ffi::PyObject,
        graveyard: &mut Vec<Py<PyAny>>,
    ) {
        let mut by_pair: FxHashMap<(usize, usize), u32> = FxHashMap::default();
        for (idx, entry) in self.entries.iter().enumerate() {
            if let Some(e) = entry {
                by_pair.insert(
                    (e.key.as_ptr() as usize, e.value.as_ptr() as usize),
                    idx as u32,
                );
            }
        }
        // The walk runs no code and allocates no Python object.
        let mut pairs = Vec::new();
        let mut pos: ffi::Py_ssize_t = 0;
        let mut key = std::ptr::null_mut();
        let mut value = std::ptr::null_mut();
        while ffi::PyDict_Next(modules, &mut pos, &mut key, &mut value) != 0 {
            pairs.push((key, value));
        }
        let mut kept = Vec::with_capacity(pairs.len());
        let mut fresh = Vec::new();
        for (seq, &(key, value)) in pairs.iter().enumerate() {
            match by_pair.remove(&(key as usize, value as usize)) {
                Some(idx) => kept.push((idx, seq as u64)),
                None => fresh.push((
                    seq as u64,
                    Bound::from_borrowed_ptr(py, key).unbind(),
                    Bound::from_borrowed_ptr(py, value).unbind(),
                )),
            }
        }
        for (_, idx) in by_pair {
            self.unlink_key(idx);
            self.live -= 1;
            self.remove(idx, graveyard);
        }
        for (idx, seq) in kept {
            let entry = self.entries[idx as usize].as_mut().expect("live");
            if entry.kind == Kind::NotStrKey {
                self.non_str.remove(&(entry.seq, idx));
                self.non_str.insert((seq, idx));
            }
            entry.seq = seq;
            mark(&mut self.entries, &mut self.work, idx);
        }
        for (seq, key, value) in fresh {
            self.insert(py, seq, key, value);
        }
        self.next_seq = pairs.len() as u64;
    }

    /// Reads or settles every entry marked for this lookup.
    fn settle(&mut self, py: Python<'_>, stats: &mut ScanStats, graveyard: &mut Vec<Py<PyAny>>) {
        let work = std::mem::take(&mut self.work);
        for &idx in &work {
            let Some(entry) = self.entries[idx as usize].as_mut() else {
                continue;
            };
            if !entry.suspect {
                continue;
            }
            entry.suspect = false;
            if entry.kind != Kind::Unread && !entry.volatile {
                if entry.watches.iter().all(Watch::holds) {
                    continue;
                }
                if self.revalidate(idx) {
                    stats.deep_checks += 1;
                    continue;
                }
            }
            self.forget(idx, graveyard);
            self.read(py, idx, stats);
        }
        self.work = work;
        self.work.clear();
    }

    /// After some watches of `idx` failed: true (and the watches renewed) when every failed
    /// watch is an instance dict's whose recorded lookups still find the same objects.
    fn revalidate(&mut self, idx: u32) -> bool {
        let entry = self.entries[idx as usize].as_mut().expect("live");
        if entry.kind != Kind::Entry {
            return false;
        }
        // SAFETY: GIL held; the entry keeps the dict, keys and results alive.
        let Some(renew) = (unsafe { DeepCheck::renewable(entry.watches.iter(), &entry.deep) })
        else {
            return false;
        };
        for i in renew {
            entry.watches[i].renew();
            let slot = entry.polled[i];
            if slot != NOT_POLLED {
                self.polled.set(slot, entry.watches[i]);
            }
        }
        true
    }

    /// Reads entry `idx` hook-free and indexes what it found.
    fn read(&mut self, py: Python<'_>, idx: u32, stats: &mut ScanStats) {
        let entry = self.entries[idx as usize].as_mut().expect("live");
        let key = entry.key.bind(py).clone();
        let value = entry.value.bind(py).clone();
        let view = PyEntry {
            py,
            key: &key,
            value: &value,
        };
        if !view.key_is_str() {
            entry.kind = Kind::NotStrKey;
            self.non_str.insert((entry.seq, idx));
            return;
        }
        if view.value_is_none() {
            entry.kind = Kind::NoneValue;
            return;
        }
        let read = view.read();
        stats.entries_read += 1;
        stats.hook_only_attrs += read.attrs.hook_only_count();
        let facts = EntryFacts::from_read(&read);
        entry.kind = Kind::Entry;
        entry.score = facts.score();
        match read.stamp.inner {
            StampInner::Python(stamp) => {
                // `forget` emptied it and kept its capacity (a re-read allocates nothing).
                entry.polled.clear();
                entry.polled.resize(stamp.watches.len(), NOT_POLLED);
                for (i, watch) in stamp.watches.iter().enumerate() {
                    // A handful of watches per read: a search, not a table of flags.
                    if !stamp.notified.iter().any(|&(j, _)| j as usize == i) {
                        entry.polled[i] = self.polled.push(*watch, idx);
                    }
                }
                entry.watches = stamp.watches;
                entry.deep = stamp.deep;
                entry.volatile = stamp.volatile;
                entry.keep = stamp.keep;
                entry.notified = stamp.notified;
            }
            StampInner::Version(_) => entry.volatile = true,
        }
        if entry.volatile {
            self.volatile.push(idx);
        }
        for &(_, dict) in &entry.notified {
            // A dict watched twice by one read (a class dict reached two ways) is listed
            // once: a change marks the entry once.
            self.by_dict.push_unique(dict, idx);
        }
        for hash in facts.candidate_hashes() {
            self.index.push_unique(hash, idx);
        }
        entry.facts = Some(facts);
    }

    /// The L4 answer from the facts (all current by now).
    fn answer(&self, target: &str, stats: &mut ScanStats) -> Option<String> {
        let query = Query::new(target);
        let mut best0: Option<(u64, u32)> = None;
        let mut best1: Option<(u64, u32)> = None;
        for hash in std::iter::once(query.hash).chain(query.pyc_hash) {
            for &idx in self.index.get(&hash) {
                let Some(entry) = self.entries[idx as usize].as_ref() else {
                    continue;
                };
                if !entry.facts.as_ref().is_some_and(|f| f.matches(&query)) {
                    continue;
                }
                let best = if entry.score == 0 {
                    &mut best0
                } else {
                    &mut best1
                };
                if best.is_none_or(|(seq, _)| entry.seq < seq) {
                    *best = Some((entry.seq, idx));
                }
            }
        }
        let first_non_str = self.non_str.first().map(|&(seq, _)| seq);
        let name = |idx: u32| {
            self.entries[idx as usize]
                .as_ref()
                .and_then(|e| e.facts.as_ref())
                .map(|f| f.preferred().to_string())
        };
        match (best0, first_non_str) {
            (Some((seq, idx)), ns) if ns.is_none_or(|ns| seq < ns) => name(idx),
            (_, Some(_)) => {
                stats.non_str_key_aborts += 1;
                None
            }
            _ => best1.and_then(|(_, idx)| name(idx)),
        }
    }

    /// Rewrites the polled array without freed slots once they make up most of it.
    fn compact_polled(&mut self) {
        if !self.polled.wants_compaction() {
            return;
        }
        let mut polled = Polled::with_capacity(self.polled.live());
        for (idx, entry) in self.entries.iter_mut().enumerate() {
            let Some(entry) = entry else { continue };
            for slot in entry.polled.iter_mut().filter(|s| **s != NOT_POLLED) {
                *slot = polled.push(self.polled.get(*slot), idx as u32);
            }
        }
        self.polled = polled;
    }

    /// Drops everything (the registration too: the last one to go quiets the watcher),
    /// and returns an empty scanner that remembers whether the watcher was unavailable.
    pub(crate) fn release(self) -> WatchedScanner {
        let unavailable = self.unavailable;
        drop(self);
        let mut empty = WatchedScanner::default();
        empty.unavailable = unavailable;
        empty
    }
}

impl Drop for WatchedScanner {
    /// Unwatches, then releases the objects the mirror keeps, with the GIL taken once.
    fn drop(&mut self) {
        if self.entries.is_empty() {
            return;
        }
        // Unwatch first: the objects released next may free watched dicts, each of which
        // would otherwise send the watcher a deallocation event.
        drop(self.reg.take());
        Python::with_gil(|py| {
            // Released as `Bound`s: the GIL is in hand, and a `Py` dropped on its own asks
            // the thread whether it holds the GIL, once per object (about twenty per
            // module).
            for entry in self.entries.drain(..).flatten() {
                let Entry {
                    key, value, keep, ..
                } = entry;
                for obj in keep.into_iter().chain([key, value]) {
                    drop(obj.into_bound(py));
                }
            }
        });
    }
}

/// The words no watcher reports on, polled on every lookup: one per ordinary module, so
/// this is the part of a lookup that grows with the number of modules. Kept as parallel
/// arrays so the poll is a tight loop over them (a load of the address, of the word and of
/// the wanted value per slot), compared a block at a time.
#[derive(Default)]
struct Polled {
    addrs: Vec<*const usize>,
    wants: Vec<usize>,
    /// The entry each slot belongs to, or [`NO_OWNER`] for a freed slot.
    owners: Vec<u32>,
    /// Freed slots (they watch a word that never changes).
    garbage: usize,
}

// SAFETY: the words are only read with the GIL held, and their owners keep the watched
// objects alive (see `Watch`).
unsafe impl Send for Polled {}

impl Polled {
    fn with_capacity(n: usize) -> Self {
        Polled {
            addrs: Vec::with_capacity(n),
            wants: Vec::with_capacity(n),
            owners: Vec::with_capacity(n),
            garbage: 0,
        }
    }

    fn live(&self) -> usize {
        self.addrs.len() - self.garbage
    }

    fn push(&mut self, watch: Watch, owner: u32) -> u32 {
        self.addrs.push(watch.addr);
        self.wants.push(watch.want);
        self.owners.push(owner);
        (self.addrs.len() - 1) as u32
    }

    fn get(&self, slot: u32) -> Watch {
        Watch {
            addr: self.addrs[slot as usize],
            want: self.wants[slot as usize],
        }
    }

    fn set(&mut self, slot: u32, watch: Watch) {
        self.addrs[slot as usize] = watch.addr;
        self.wants[slot as usize] = watch.want;
    }

    fn free(&mut self, slot: u32) {
        self.set(slot, Watch::always());
        self.owners[slot as usize] = NO_OWNER;
        self.garbage += 1;
    }

    fn wants_compaction(&self) -> bool {
        self.garbage >= 1024 && self.garbage * 2 >= self.addrs.len()
    }

    /// Appends to `out` the slots whose word no longer holds the wanted value, in order.
    fn changed(&self, out: &mut Vec<u32>) {
        debug_assert_eq!(self.addrs.len(), self.wants.len());
        #[allow(unused_mut)]
        let mut start = 0;
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            start = unsafe { self.changed_avx2(out) };
        }
        self.changed_from(start, out);
    }

    /// [`changed`](Self::changed) from slot `start` on, eight slots per block compared
    /// without a branch per slot (load the address, load the word, compare, merge), then a
    /// test per block.
    // Out of line: inlined into `scan`, its loop lost registers to the rest of the lookup.
    #[inline(never)]
    fn changed_from(&self, start: usize, out: &mut Vec<u32>) {
        const BLOCK: usize = 8;
        let n = self.addrs.len();
        // SAFETY: every index passed is below `n`.
        let differs = |i: usize| unsafe { self.differs(i) };
        let mut start = start;
        while start + BLOCK <= n {
            let mut diff = 0;
            for k in 0..BLOCK {
                diff |= differs(start + k);
            }
            if diff != 0 {
                self.changed_in(start..start + BLOCK, out);
            }
            start += BLOCK;
        }
        self.changed_in(start..n, out);
    }

    /// Nonzero when slot `i`'s word differs from the wanted value.
    ///
    /// # Safety
    /// `i` is below the number of slots (both arrays have that many).
    #[inline(always)]
    unsafe fn differs(&self, i: usize) -> usize {
        debug_assert!(i < self.addrs.len() && i < self.wants.len());
        // SAFETY: `i` is in bounds (above); every address points into an object its owner
        // keeps alive (a freed slot points to a static word); the GIL is held, so nothing
        // writes them concurrently.
        **self.addrs.as_ptr().add(i) ^ *self.wants.as_ptr().add(i)
    }

    fn changed_in(&self, slots: std::ops::Range<usize>, out: &mut Vec<u32>) {
        let slots = slots.start..slots.end.min(self.addrs.len());
        for i in slots {
            // SAFETY: `i` is below the number of slots (the range is clipped to it).
            if unsafe { self.differs(i) } != 0 {
                out.push(i as u32);
            }
        }
    }

    /// The full blocks of 32 slots, four words to a vector: each word is loaded straight
    /// into a vector lane from its address (`vmovq`), so four words cost their four address
    /// loads and about eight vector instructions, and a block one test, against four
    /// instructions a word in [`changed_from`](Self::changed_from). Returns where it
    /// stopped (the rest is left to the scalar loop).
    ///
    /// # Safety
    /// The CPU has AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn changed_avx2(&self, out: &mut Vec<u32>) -> usize {
        use std::arch::x86_64::*;
        const BLOCK: usize = 32;
        let n = self.addrs.len();
        // Four words at `a[0..4]`, XORed with `w[0..4]`.
        // SAFETY (as in `differs`): both pointers have four slots left, the addresses are
        // live, the GIL is held.
        let four = |a: *const *const usize, w: *const usize| {
            let word = |k: usize| _mm_loadl_epi64(*a.add(k) as *const __m128i);
            let low = _mm_unpacklo_epi64(word(0), word(1));
            let high = _mm_unpacklo_epi64(word(2), word(3));
            let words = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(low), high);
            _mm256_xor_si256(words, _mm256_loadu_si256(w as *const __m256i))
        };
        let mut start = 0;
        while start + BLOCK <= n {
            let (a, w) = (
                self.addrs.as_ptr().add(start),
                self.wants.as_ptr().add(start),
            );
            let mut diff = four(a, w);
            for k in (4..BLOCK).step_by(4) {
                diff = _mm256_or_si256(diff, four(a.add(k), w.add(k)));
            }
            if _mm256_testz_si256(diff, diff) == 0 {
                self.changed_in(start..start + BLOCK, out);
            }
            start += BLOCK;
        }
        start
    }
}

/// Marks entry `idx` to be settled in this lookup.
fn mark(entries: &mut [Option<Entry>], work: &mut Vec<u32>, idx: u32) {
    if idx == NO_OWNER {
        return;
    }
    if let Some(entry) = entries[idx as usize].as_mut() {
        if !entry.suspect {
            entry.suspect = true;
            work.push(idx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The poll finds exactly the changed slots, in order, for every length around the
    /// block sizes (8 scalar, 32 vector), with changes in every position of a block, in the
    /// vector path (blocks of 32, when the CPU has it) and in the scalar path alone.
    #[test]
    fn the_poll_finds_exactly_the_changed_words() {
        for n in 0..100usize {
            let patterns = [
                vec![],
                vec![0],
                vec![n / 2],
                vec![n.saturating_sub(1)],
                (0..n).step_by(3).collect(),
            ];
            for changed in patterns {
                let changed: Vec<usize> = changed.into_iter().filter(|&i| i < n).collect();
                let mut words: Vec<usize> = (0..n).map(|i| 1000 + i).collect();
                let base = words.as_mut_ptr();
                let mut polled = Polled::default();
                for i in 0..n {
                    // SAFETY: `i < n`; `words` outlives the watches and is not moved.
                    let addr = unsafe { base.add(i) };
                    let watch = Watch {
                        addr,
                        want: 1000 + i,
                    };
                    assert_eq!(polled.push(watch, i as u32), i as u32);
                }
                for &i in &changed {
                    // SAFETY: as above; a write as the program's would be.
                    unsafe { *base.add(i) += 1 };
                }
                let mut all = Vec::new();
                polled.changed(&mut all);
                let mut scalar = Vec::new();
                polled.changed_from(0, &mut scalar);
                let expected: Vec<u32> = changed.iter().map(|&i| i as u32).collect();
                assert_eq!(all, expected, "n {n}");
                assert_eq!(scalar, expected, "n {n}");
                drop(words);
            }
        }
    }
}
