//! The legacy engine's dict watcher (CPython 3.12+, `PyDict_AddWatcher`): one watcher id for
//! the process, and one counter per watched dict that every event of that dict increments.
//!
//! # Why
//!
//! The stamps of hook-free reads (`naming::python`) record words of memory and the values
//! they had. On 3.11 a dict's `ma_version_tag` is such a word: every mutation gives it a new
//! value. From 3.12 the version tag is deprecated (gone in 3.14) and a watcher is the API
//! CPython offers for "tell me when this dict changes", so on 3.12+ a watched dict's word
//! is its counter here.
//!
//! One write neither sees on 3.13.0: an attribute of an instance of a plain class (a
//! `ModuleSpec`) is stored straight into the object's inline values; its materialised
//! `__dict__` keeps its version and its watchers are not told (checked: a `_testcapi`
//! watcher sees `d["k"] = v` but not `o.k = v`). The reader watches those value words
//! themselves (`naming::python`, `inline_value_words`).
//!
//! # Lifetime of the counters
//!
//! A counter is handed out for a live dict and stays at a fixed address. It is recycled only
//! when its dict is deallocated (`PyDict_EVENT_DEALLOCATED`): every stamp that watches a
//! dict keeps the dict alive, so no stamp refers to a counter by then. Counters only ever
//! grow, so a recycled one never shows a value a new stamp would mistake for "unchanged".
//! Dicts stay watched until they die (unwatching one could silence a stamp of another
//! reader of the same process); a watched dict costs one callback per mutation.
//!
//! # Self-check
//!
//! The watcher is added, and checked, on first use: a probe dict is watched and changed,
//! and its counter must move. If the id cannot be had (all six user ids are taken) or the
//! check fails, there is no watcher and the readers fall back to version tags (see
//! `naming::python`).

use std::os::raw::c_int;
use std::sync::{Mutex, OnceLock};

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
}

/// `PyDict_EVENT_DEALLOCATED` (the events are ADDED, MODIFIED, DELETED, CLONED, CLEARED,
/// DEALLOCATED, in that order on 3.12 and 3.13).
const EVENT_DEALLOCATED: c_int = 5;

/// Counters are allocated this many at a time and never freed (only recycled).
const CHUNK: usize = 1024;

#[derive(Default)]
struct Counters {
    /// Watched dict address -> its counter.
    by_dict: FxHashMap<usize, *mut usize>,
    /// Counters of deallocated dicts, for reuse.
    free: Vec<*mut usize>,
}

// SAFETY: the counters are plain words in leaked chunks; they are only read or written with
// the GIL held (the watcher callback runs with it, and so does every reader).
unsafe impl Send for Counters {}

impl Counters {
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
}

static COUNTERS: Mutex<Option<Counters>> = Mutex::new(None);

/// The watcher id, once added and checked (`None`: no watcher in this process).
static WATCHER: OnceLock<Option<c_int>> = OnceLock::new();

fn counters() -> std::sync::MutexGuard<'static, Option<Counters>> {
    COUNTERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The watcher callback: counts the event on the dict's counter; forgets the dict when it
/// is deallocated. Runs no Python code, never fails.
unsafe extern "C" fn on_dict_event(
    event: c_int,
    dict: *mut ffi::PyObject,
    _key: *mut ffi::PyObject,
    _new_value: *mut ffi::PyObject,
) -> c_int {
    let mut guard = counters();
    let Some(counters) = guard.as_mut() else {
        return 0;
    };
    if event == EVENT_DEALLOCATED {
        if let Some(counter) = counters.by_dict.remove(&(dict as usize)) {
            counters.free.push(counter);
        }
    } else if let Some(&counter) = counters.by_dict.get(&(dict as usize)) {
        *counter = (*counter).wrapping_add(1);
    }
    0
}

/// The counter of `dict`, watching it first if need be; `None` when there is no watcher or
/// CPython refuses to watch the dict.
///
/// # Safety
/// `dict` is a live dict and the GIL is held.
pub(crate) unsafe fn counter_of(dict: *mut ffi::PyObject) -> Option<*const usize> {
    let id = (*WATCHER.get_or_init(add_checked_watcher))?;
    counter_with(id, dict)
}

unsafe fn counter_with(id: c_int, dict: *mut ffi::PyObject) -> Option<*const usize> {
    let mut guard = counters();
    let counters = guard.get_or_insert_with(Counters::default);
    if let Some(&counter) = counters.by_dict.get(&(dict as usize)) {
        return Some(counter);
    }
    // Sends no event, so the callback cannot run while the lock is held.
    if PyDict_Watch(id, dict) < 0 {
        ffi::PyErr_Clear();
        return None;
    }
    let counter = counters.take();
    counters.by_dict.insert(dict as usize, counter);
    Some(counter)
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
