//! The legacy engine's dict watcher (CPython 3.12+, `PyDict_AddWatcher`): one watcher id for
//! the process. It keeps, for every watched dict, a counter that every event of that dict
//! increments, and, while a scanner is registered, a log of what changed for the scanners
//! (`wscan.rs`) to read.
//!
//! # Why
//!
//! The stamps of hook-free reads (`naming::python`) record words of memory and the values
//! they had. On 3.11 a dict's `ma_version_tag` is such a word: every mutation gives it a new
//! value. From 3.12 the version tag is deprecated (gone in 3.14) and a watcher is the API
//! CPython offers for "tell me when this dict changes", so on 3.12+ a watched dict's word
//! is its counter here.
//!
//! The counters alone still leave a reader to look at every counter it depends on. The log
//! is what makes a lookup O(changes): it holds, in order,
//! - every event of the journal dict (`sys.modules`), with its key and new value (new
//!   references, released once every registered scanner has read them), and
//! - the address of each other watched dict that had an event, once per dict until the
//!   scanners read the log again (a module body defining a hundred functions logs its dict
//!   once).
//!
//! Each registered scanner has a cursor into the log; the log is trimmed to the oldest
//! cursor. With no scanner registered nothing is logged.
//!
//! One write neither the counters nor the log see on 3.13.0: an attribute of an instance
//! of a plain class (a `ModuleSpec`) is stored straight into the object's inline values;
//! its materialised `__dict__` keeps its version and its watchers are not told (checked: a
//! `_testcapi` watcher sees `d["k"] = v` but not `o.k = v`). The reader watches those value
//! words themselves (`naming::python`, `inline_value_words`), and the scanners poll them.
//!
//! # Lifetime of the counters
//!
//! A counter is handed out for a live dict and stays at a fixed address. It is recycled when
//! its dict is deallocated (`PyDict_EVENT_DEALLOCATED`: every stamp that watches a dict keeps
//! the dict alive, so no stamp refers to a counter by then) or when the watcher goes quiet
//! (below). Counters only ever grow, so a recycled one never shows a value a stamp made
//! before would mistake for "unchanged".
//!
//! # Going quiet when the last scanner goes (the session stops)
//!
//! When the last registered scanner unregisters (its `sys.modules` reader is dropped at the
//! end of a session), every watched dict is unwatched, so the program's dict writes after
//! the recording stops cost CPython's watcher check and nothing else. Each counter is
//! incremented once more as its dict is unwatched: a stamp that outlives this (a cache kept
//! by someone else) then never holds again, and the entry it vouched for is read afresh
//! (which watches its dicts again). The generation number tells scanners that the watcher
//! went quiet since their last lookup.
//!
//! # Self-check
//!
//! The watcher is added, and checked, on first use: a probe dict is watched and changed,
//! and its counter must move. If the id cannot be had (all six user ids are taken) or the
//! check fails, there is no watcher and the readers fall back to version tags (see
//! `naming::python`), and the scanner to the walk of `pyscan.rs`.
//!
//! # Locking
//!
//! The state is only touched with the GIL held (the callback runs with it, and so does
//! every caller), so it lives in a cell the GIL guards, with no mutex. Nothing that runs
//! with the state borrowed calls back into CPython in a way that can send a dict event
//! (`PyDict_Watch`/`PyDict_Unwatch` send none; references are released only after the
//! borrow ends). Should an event arrive while the state is borrowed all the same, it is not
//! lost silently: the generation moves, and every scanner starts over.

use std::cell::{Cell, UnsafeCell};
use std::os::raw::c_int;
use std::sync::OnceLock;

use pyo3::ffi;
use rustc_hash::FxHashMap;

/// `PyDict_WatchCallback`.
type Callback = unsafe extern "C" fn(
    event: c_int,
    dict: *mut ffi::PyObject,
    key: *mut ffi::PyObject,
    new_value: *mut ffi::PyObject,
) -> c_int;

extern "C" {
    // CPython 3.12+ (not declared by pyo3).
    fn PyDict_AddWatcher(callback: Callback) -> c_int;
    fn PyDict_ClearWatcher(watcher_id: c_int) -> c_int;
    fn PyDict_Watch(watcher_id: c_int, dict: *mut ffi::PyObject) -> c_int;
    fn PyDict_Unwatch(watcher_id: c_int, dict: *mut ffi::PyObject) -> c_int;
}

/// `PyDict_WatchEvent` (ADDED, MODIFIED, DELETED, CLONED, CLEARED, DEALLOCATED, in that
/// order on 3.12 and 3.13).
pub(crate) const EVENT_ADDED: c_int = 0;
pub(crate) const EVENT_MODIFIED: c_int = 1;
pub(crate) const EVENT_DELETED: c_int = 2;
const EVENT_DEALLOCATED: c_int = 5;

/// Counters are allocated this many at a time and never freed (only recycled).
const CHUNK: usize = 1024;

/// One record of the log.
pub(crate) enum Record {
    /// An event of the journal dict: the event, its key and new value (new references;
    /// null where CPython passed none).
    Journal {
        event: c_int,
        key: *mut ffi::PyObject,
        value: *mut ffi::PyObject,
    },
    /// A watched dict (not the journal) had at least one event.
    Dirty(usize),
}

impl Record {
    /// Releases the references a journal record holds.
    ///
    /// # Safety
    /// GIL held, and the watcher state not borrowed (a release can deallocate a watched
    /// dict, whose event reaches the callback).
    unsafe fn release(self) {
        if let Record::Journal { key, value, .. } = self {
            for obj in [key, value] {
                if !obj.is_null() {
                    ffi::Py_DECREF(obj);
                }
            }
        }
    }
}

struct Watched {
    counter: *mut usize,
    /// Absolute log position of this dict's last `Dirty` record (`u64::MAX`: none).
    logged_at: u64,
}

#[derive(Default)]
struct State {
    by_dict: FxHashMap<usize, Watched>,
    /// Counters of deallocated or unwatched dicts, for reuse.
    free: Vec<*mut usize>,
    /// The dict whose events are logged with their keys and values (`sys.modules`), or 0.
    journal: usize,
    log: Vec<Record>,
    /// Absolute position of `log[0]`.
    base: u64,
    /// The highest cursor any scanner has reached: a dict already logged at or after it
    /// need not be logged again (every cursor is at or before it).
    high: u64,
    /// Cursor of each registered scanner (`None`: a free slot).
    cursors: Vec<Option<u64>>,
    registered: usize,
    /// Moves when every watch is dropped (the watcher went quiet) or an event was missed.
    generation: u64,
}

impl State {
    fn take(&mut self) -> *mut usize {
        if self.free.is_empty() {
            let chunk: &'static mut [usize] = Box::leak(vec![0usize; CHUNK].into_boxed_slice());
            let base = chunk.as_mut_ptr();
            // SAFETY: every offset lies inside the leaked chunk.
            self.free
                .extend((0..CHUNK).rev().map(|i| unsafe { base.add(i) }));
        }
        self.free.pop().expect("just refilled")
    }

    fn end(&self) -> u64 {
        self.base + self.log.len() as u64
    }

    /// Drops the records every registered scanner has read; returns them for release.
    fn trim(&mut self) -> Vec<Record> {
        let oldest = self
            .cursors
            .iter()
            .flatten()
            .copied()
            .min()
            .unwrap_or(self.end());
        let n = (oldest.saturating_sub(self.base) as usize).min(self.log.len());
        self.base += n as u64;
        self.log.drain(..n).collect()
    }
}

/// The watcher's state: only touched with the GIL held.
struct GilCell {
    state: UnsafeCell<Option<State>>,
    busy: Cell<bool>,
}

// SAFETY: every access happens with the GIL held (see the module documentation), which
// serialises them; `busy` catches the one re-entry that could happen (an event sent while
// the state is borrowed).
unsafe impl Sync for GilCell {}

static STATE: GilCell = GilCell {
    state: UnsafeCell::new(None),
    busy: Cell::new(false),
};

/// Runs `f` on the state. `None` when the state is already borrowed (an event arrived
/// while it was: see the module documentation).
///
/// # Safety
/// GIL held; `f` sends no dict event and releases no Python object.
unsafe fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> Option<R> {
    if STATE.busy.replace(true) {
        return None;
    }
    // SAFETY: GIL held and not re-entered (busy), so this is the only reference.
    let state = (*STATE.state.get()).get_or_insert_with(State::default);
    let result = f(state);
    STATE.busy.set(false);
    Some(result)
}

/// An event that found the state borrowed: force every scanner to start over.
unsafe fn missed_event() {
    // SAFETY: the borrow in progress belongs to a caller further up this thread's stack
    // (GIL held); the generation is read by scanners only after it ends. A plain write to
    // a separate word keeps the evidence.
    MISSED.set(MISSED.get().wrapping_add(1));
}

struct GilWord(Cell<u64>);
// SAFETY: GIL-guarded, as `STATE`.
unsafe impl Sync for GilWord {}
impl GilWord {
    fn get(&self) -> u64 {
        self.0.get()
    }
    fn set(&self, v: u64) {
        self.0.set(v)
    }
}
static MISSED: GilWord = GilWord(Cell::new(0));

/// The watcher id, once added and checked (`None`: no watcher in this process).
static WATCHER: OnceLock<Option<c_int>> = OnceLock::new();

fn watcher_id() -> Option<c_int> {
    *WATCHER.get_or_init(add_checked_watcher)
}

/// The watcher callback: counts the event on the dict's counter, logs it for the scanners,
/// forgets the dict when it is deallocated. Runs no Python code, never fails.
unsafe extern "C" fn on_dict_event(
    event: c_int,
    dict: *mut ffi::PyObject,
    key: *mut ffi::PyObject,
    new_value: *mut ffi::PyObject,
) -> c_int {
    let addr = dict as usize;
    let logged = with_state(|state| {
        if event == EVENT_DEALLOCATED {
            if let Some(w) = state.by_dict.remove(&addr) {
                state.free.push(w.counter);
            }
            if state.journal == addr {
                state.journal = 0;
                state.generation += 1;
            }
            return false;
        }
        let end = state.end();
        let registered = state.registered > 0;
        let journal = state.journal == addr;
        let Some(w) = state.by_dict.get_mut(&addr) else {
            return false;
        };
        *w.counter = (*w.counter).wrapping_add(1);
        if !registered {
            return false;
        }
        if journal {
            for obj in [key, new_value] {
                if !obj.is_null() {
                    ffi::Py_INCREF(obj);
                }
            }
            state.log.push(Record::Journal {
                event,
                key,
                value: new_value,
            });
        } else if w.logged_at == u64::MAX || w.logged_at < state.high {
            w.logged_at = end;
            state.log.push(Record::Dirty(addr));
        }
        true
    });
    if logged.is_none() {
        missed_event();
    }
    0
}

/// The counter of `dict`, watching it first if need be; `None` when there is no watcher or
/// CPython refuses to watch the dict.
///
/// # Safety
/// `dict` is a live dict and the GIL is held.
pub(crate) unsafe fn counter_of(dict: *mut ffi::PyObject) -> Option<*const usize> {
    let id = watcher_id()?;
    counter_with(id, dict)
}

unsafe fn counter_with(id: c_int, dict: *mut ffi::PyObject) -> Option<*const usize> {
    let found = with_state(|state| state.by_dict.get(&(dict as usize)).map(|w| w.counter))?;
    if let Some(counter) = found {
        return Some(counter);
    }
    // Outside the borrow: PyDict_Watch sends no event, but may set an error.
    if PyDict_Watch(id, dict) < 0 {
        ffi::PyErr_Clear();
        return None;
    }
    with_state(|state| {
        let counter = state.take();
        state.by_dict.insert(
            dict as usize,
            Watched {
                counter,
                logged_at: u64::MAX,
            },
        );
        counter as *const usize
    })
}

/// A scanner's registration: its cursor into the log. Dropping it (with the GIL held)
/// unregisters; the last one to go makes the watcher quiet.
pub(crate) struct Registration {
    slot: usize,
    generation: u64,
}

/// What [`Registration::drain`] found.
pub(crate) struct Drained {
    /// The records since the last drain, in order (journal records own their references;
    /// release them with [`release_all`] once done, outside any watcher call).
    pub(crate) records: Vec<Record>,
    /// False when the records do not cover everything since the last drain (the watcher
    /// went quiet, an event was missed, or this is the first drain): start over.
    pub(crate) complete: bool,
}

/// The generation as scanners see it (quiet periods and missed events both move it).
unsafe fn generation_now(state: &State) -> u64 {
    state.generation.wrapping_add(MISSED.get())
}

impl Registration {
    /// Registers a scanner that reads `journal` (the `sys.modules` dict) from now on:
    /// watches it and makes it the journal dict. `None` without a watcher.
    ///
    /// # Safety
    /// GIL held, `journal` a live dict.
    pub(crate) unsafe fn new(journal: *mut ffi::PyObject) -> Option<Registration> {
        let mut reg = with_state(|state| {
            let slot = match state.cursors.iter().position(Option::is_none) {
                Some(slot) => slot,
                None => {
                    state.cursors.push(None);
                    state.cursors.len() - 1
                }
            };
            state.cursors[slot] = Some(state.end());
            state.registered += 1;
            Registration {
                slot,
                generation: u64::MAX,
            }
        })?;
        if !reg.set_journal(journal) {
            drop(reg);
            return None;
        }
        Some(reg)
    }

    /// Makes `dict` the journal dict (watching it). False without a watcher.
    ///
    /// # Safety
    /// GIL held, `dict` a live dict.
    pub(crate) unsafe fn set_journal(&mut self, dict: *mut ffi::PyObject) -> bool {
        if counter_of(dict).is_none() {
            return false;
        }
        with_state(|state| {
            if state.journal != dict as usize {
                state.journal = dict as usize;
                // Records of the previous journal dict cannot be told from this one's.
                state.generation += 1;
            }
        })
        .is_some()
    }

    /// The records since this scanner's last drain.
    ///
    /// # Safety
    /// GIL held.
    pub(crate) unsafe fn drain(&mut self) -> Drained {
        let slot = self.slot;
        let last_generation = self.generation;
        let result = with_state(|state| {
            let generation = generation_now(state);
            let end = state.end();
            let cursor = state.cursors[slot].unwrap_or(end);
            let complete = generation == last_generation && cursor >= state.base;
            let start = (cursor.saturating_sub(state.base) as usize).min(state.log.len());
            let mut records = Vec::with_capacity(state.log.len() - start);
            let shared = state.registered > 1;
            for record in &state.log[start..] {
                records.push(match record {
                    Record::Dirty(d) => Record::Dirty(*d),
                    Record::Journal { event, key, value } => {
                        if shared {
                            // Others read this record too: take references of our own.
                            for obj in [*key, *value] {
                                if !obj.is_null() {
                                    ffi::Py_INCREF(obj);
                                }
                            }
                        }
                        Record::Journal {
                            event: *event,
                            key: *key,
                            value: *value,
                        }
                    }
                });
            }
            state.cursors[slot] = Some(end);
            state.high = state.high.max(end);
            let trimmed = if shared {
                state.trim()
            } else {
                // The only reader: the records handed out carry the log's references
                // (a `Record` releases nothing when dropped).
                state.base = end;
                state.log.clear();
                Vec::new()
            };
            (Drained { records, complete }, trimmed, generation)
        });
        match result {
            Some((drained, trimmed, generation)) => {
                release_all(trimmed);
                self.generation = generation;
                drained
            }
            None => Drained {
                records: Vec::new(),
                complete: false,
            },
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let slot = self.slot;
        // SAFETY: the GIL is taken (it is normally held already: the scanner lives in the
        // session's `sys.modules` reader, dropped when the session stops).
        pyo3::Python::with_gil(|_| unsafe {
            let leftover = with_state(|state| {
                state.cursors[slot] = None;
                state.registered -= 1;
                if state.registered == 0 {
                    let records = std::mem::take(&mut state.log);
                    state.base = state.end();
                    state.high = state.base;
                    state.journal = 0;
                    let dicts: Vec<(usize, Watched)> = state.by_dict.drain().collect();
                    state.free.reserve(dicts.len());
                    for (_, w) in &dicts {
                        // A stamp that outlives the watch never holds again.
                        *w.counter = (*w.counter).wrapping_add(1);
                        state.free.push(w.counter);
                    }
                    state.generation += 1;
                    (records, dicts.into_iter().map(|(d, _)| d).collect())
                } else {
                    (state.trim(), Vec::new())
                }
            });
            if let Some((records, dicts)) = leftover {
                if let Some(id) = watcher_id() {
                    for dict in dicts {
                        if PyDict_Unwatch(id, dict as *mut ffi::PyObject) < 0 {
                            ffi::PyErr_Clear();
                        }
                    }
                }
                release_all(records);
            }
        })
    }
}

/// Releases the references of records handed out by [`Registration::drain`].
///
/// # Safety
/// GIL held, watcher state not borrowed.
pub(crate) unsafe fn release_all(records: Vec<Record>) {
    for record in records {
        record.release();
    }
}

/// How many dicts are watched now (for tests and diagnostics).
pub fn watched_dicts() -> usize {
    // SAFETY: callers hold the GIL (a Python-facing diagnostic).
    unsafe { with_state(|state| state.by_dict.len()).unwrap_or(0) }
}

/// Adds the watcher and checks that it sees both kinds of write a stamp depends on.
fn add_checked_watcher() -> Option<c_int> {
    // SAFETY: called with the GIL held (from `counter_of`); every object made here is
    // released before returning.
    unsafe {
        let id = PyDict_AddWatcher(on_dict_event);
        if id < 0 {
            ffi::PyErr_Clear();
            return None;
        }
        if probe(id) {
            Some(id)
        } else {
            PyDict_ClearWatcher(id);
            ffi::PyErr_Clear();
            None
        }
    }
}

/// A probe dict is watched and changed; its counter must move.
unsafe fn probe(id: c_int) -> bool {
    let key = ffi::PyUnicode_FromString(c"ct_probe".as_ptr());
    let dict = ffi::PyDict_New();
    let mut ok = !key.is_null() && !dict.is_null();
    if ok {
        ok = match counter_with(id, dict) {
            Some(counter) => {
                let before = *counter;
                ffi::PyDict_SetItem(dict, key, key) == 0 && *counter != before
            }
            None => false,
        };
    }
    for obj in [dict, key] {
        if !obj.is_null() {
            ffi::Py_DECREF(obj);
        }
    }
    if !ok {
        ffi::PyErr_Clear();
    }
    ok
}
