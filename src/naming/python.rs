//! Hook-free reads of Python objects: the real `sys.modules` as a [`ModuleTable`]
//! ([`PySysModules`]) and the globals facts of a frame ([`read_globals_facts`]).
//!
//! # What "hook-free" means here (spec L4.7)
//!
//! No attribute is read with `getattr`/`PyObject_GetAttr`, so no `__getattr__` (PEP 562 or
//! on a class), no `__getattribute__` override, no `LazyLoader` and no property runs. To
//! read attribute `A` of object `o`:
//!
//! 1. the instance dict of `o` (`PyObject_GenericGetDict`, the C-level `__dict__` of the
//!    type's dict slot, whatever a class-level `__dict__` property says) is looked up with
//!    `PyDict_GetItemWithError`, which ignores the `__getitem__` of dict subclasses; a hit
//!    is the answer (even if the class has a data descriptor for `A`);
//! 2. otherwise the dicts of the types in `type(o).__mro__` are looked up in order. The
//!    first hit is used as it is when it is plain data (its type has no `__get__`). When it
//!    is a descriptor, only two kinds are invoked, because their `__get__` is C code that
//!    runs no Python code: `member_descriptor` (a `__slots__` read) and the
//!    `getset_descriptor`s of `type` itself (`__name__` of a class stored in
//!    `sys.modules`). Any other descriptor (property, function, classmethod, extension
//!    getset...) is not invoked: the attribute is **hook-only**;
//! 3. when nothing was found, the attribute is **hook-only** if a hook could have produced
//!    it — the type's `tp_getattro` is not one of the stock C ones (generic, module, type),
//!    i.e. a Python `__getattr__`/`__getattribute__` sits in the MRO, or `o` is a module
//!    whose dict holds a PEP 562 `__getattr__` — and **absent** otherwise.
//!
//! Hook-only attributes count as absent; the legacy resolver counts them.
//!
//! Dict lookups with an exact-`str` key could in theory call the `__eq__` of a `str`
//! subclass *key* stored in the same dict with an equal hash; CPython's own attribute
//! lookup has the same property and no stock object is affected.
//!
//! # Stamps
//!
//! A read records what it depended on (see [`PyStamp`]): the type of each object it looked
//! at, the identity of its instance dict, the `ma_version_tag` of that dict (CPython 3.11
//! gives every dict mutation a new, globally unique version), and, when it had to look at
//! class attributes, the `__mro__` tuple and the dict versions of every heap type in it.
//! Static (non-heap) types are immutable from Python (CPython rejects `setattr` on them)
//! and cannot get a new `__mro__`, so they are not watched. A read that had to invoke a
//! (safe) descriptor — a `__slots__` member, a getset of `type` — depends on state no dict
//! version covers, so its stamp never holds and such entries are re-read on every lookup.
//! A stamp keeps every object it refers to alive, so pointer comparisons cannot be fooled
//! by address reuse.

use std::cell::RefCell;
use std::ffi::CStr;
use std::ops::ControlFlow;
use std::sync::Arc;

use pyo3::ffi;
use pyo3::prelude::*;

use super::table::{
    AttrValue, EntryId, EntryRead, ModuleEntry, ModuleTable, ObjectAttrs, SpecValue, Stamp,
    StampInner,
};
use super::{legacy_engine, GlobalsName, SysModulesState};

/// What a [`Stamp`] of [`PySysModules`] checks: words of memory the read depended on, each
/// with the value it had then. Every object whose memory is watched is kept alive by the
/// stamp, so an address cannot be reused by another object while the stamp exists.
pub(crate) struct PyStamp {
    pub(crate) keep: Vec<Py<PyAny>>,
    pub(crate) watches: Vec<Watch>,
    /// The read invoked a descriptor (a `__slots__` member or a getset of `type`), whose
    /// value can change without any watched word changing: the stamp never holds, and
    /// such entries are re-read on every lookup.
    pub(crate) volatile: bool,
    /// For each instance dict read: the lookups made in it (used by the legacy scanner).
    #[cfg_attr(not(feature = "legacy-resolver"), allow(dead_code))]
    pub(crate) deep: Vec<DeepCheck>,
    /// The watches that are a dict watcher's counters (3.12+), with their dict: a change
    /// of such a dict is reported by the watcher, so a scanner that reads the watcher's log
    /// need not look at these words on every lookup. `(index in watches, dict address)`.
    #[cfg_attr(not(feature = "legacy-resolver"), allow(dead_code))]
    #[cfg_attr(not(Py_3_12), allow(dead_code))]
    pub(crate) notified: Vec<(u32, usize)>,
}

/// The lookups a read made in one instance dict, with their results (kept alive by the
/// stamp). When only that dict's version changed, repeating these lookups and finding the
/// same objects proves the read would give the same answer: what it derived from the
/// dict depends on nothing else (class attributes and hooks have watches of their own).
#[derive(Clone, Debug)]
#[cfg_attr(not(feature = "legacy-resolver"), allow(dead_code))]
pub(crate) struct DeepCheck {
    /// Index of the dict's first watch among the stamp's watches, and how many watches
    /// are the dict's (its change word, and on 3.13 its inline value words).
    pub(crate) watch: u32,
    pub(crate) words: u32,
    pub(crate) dict: usize,
    /// `(key, result)` addresses; a null result: the key was absent.
    pub(crate) lookups: Lookups,
}

/// The lookups of one [`DeepCheck`]: a module's read makes four or five, a spec's two, so
/// six are kept inline (two per module read were heap blocks before) and more spill.
#[derive(Clone, Debug, Default)]
pub(crate) struct Lookups {
    inline: [(usize, usize); 6],
    len: usize,
    more: Vec<(usize, usize)>,
}

impl Lookups {
    fn push(&mut self, lookup: (usize, usize)) {
        match self.inline.get_mut(self.len) {
            Some(slot) => {
                *slot = lookup;
                self.len += 1;
            }
            None => self.more.push(lookup),
        }
    }

    /// In the order they were made.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &(usize, usize)> {
        self.inline[..self.len].iter().chain(&self.more)
    }
}

impl PyStamp {
    pub(crate) fn len(&self) -> usize {
        self.watches.len() + usize::from(self.volatile)
    }

    /// Whether every watched word still has the value it had when the read was made.
    /// Reads memory only (no call into CPython); the GIL must be held.
    #[inline]
    pub(crate) fn holds(&self) -> bool {
        !self.volatile && self.watches.iter().all(|w| w.holds())
    }
}

/// One word of memory and the value it had when a read looked at it:
/// - `type(obj) is ty`: the `ob_type` word of `obj`;
/// - the instance dict of `obj` is still the same object: the dict slot of `obj`
///   (`_PyObject_GetDictPtr`), for objects whose dict can be rebound;
/// - a dict has not been mutated: its `ma_version_tag` (CPython 3.11 gives every dict
///   mutation a new, globally unique, increasing version);
/// - `ty.__mro__` is still the same tuple: the `tp_mro` word of `ty`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Watch {
    pub(crate) addr: *const usize,
    pub(crate) want: usize,
}

// SAFETY: a watch is only read with the GIL held, and its owner keeps the watched object
// alive (see `PyStamp`).
unsafe impl Send for Watch {}

impl Watch {
    /// # Safety
    /// `addr` must point into an object that outlives the watch.
    unsafe fn new(addr: *const usize) -> Self {
        Watch { addr, want: *addr }
    }

    #[inline]
    pub(crate) fn holds(&self) -> bool {
        // SAFETY: the address points into an object the owning stamp keeps alive; the GIL
        // is held by every caller, so no other thread writes it concurrently.
        unsafe { *self.addr == self.want }
    }
}

extern "C" {
    /// Exported by CPython 3.11 to 3.13 (not declared by pyo3): the address of an object's
    /// instance-dict slot (materialising a managed dict first), or null without a slot.
    fn _PyObject_GetDictPtr(obj: *mut ffi::PyObject) -> *mut *mut ffi::PyObject;
    /// Exported by CPython 3.11 to 3.13 (not declared by pyo3): the first hit for `name` in
    /// the dicts of `ty.__mro__` (borrowed), or null; runs no Python code for a `str` name
    /// and sets no error. It finds the dicts where each version keeps them: from 3.12 a
    /// static builtin type's dict lives in the interpreter, not in its `tp_dict`.
    fn _PyType_Lookup(ty: *mut ffi::PyTypeObject, name: *mut ffi::PyObject) -> *mut ffi::PyObject;
}

/// The dict of type object `ty`, as a new reference (null when it has none). From 3.12 a
/// static builtin type keeps its dict in the interpreter state and its `tp_dict` is null;
/// `PyType_GetDict` finds it on every version that has it.
unsafe fn type_dict(ty: *mut ffi::PyTypeObject) -> *mut ffi::PyObject {
    #[cfg(Py_3_12)]
    {
        let dict = ffi::PyType_GetDict(ty);
        if dict.is_null() {
            ffi::PyErr_Clear();
        }
        dict
    }
    #[cfg(not(Py_3_12))]
    {
        let dict = (*ty).tp_dict;
        if !dict.is_null() {
            ffi::Py_INCREF(dict);
        }
        dict
    }
}

/// Whether `dict`'s version tag changes on every mutation of the dict. CPython 3.13 stores
/// an attribute of an object with inline values (every instance of a plain class) straight
/// into those values, and the object's materialised `__dict__`, whose `ma_values` are those
/// values, keeps its version; a dict with its own table (a module's, a class's, a dict
/// grown past the shared keys) gets a new version on every change, as on 3.11 and 3.12.
#[allow(unused_variables)]
unsafe fn version_tag_tracks(dict: *mut ffi::PyObject) -> bool {
    #[cfg(Py_3_13)]
    {
        (*(dict as *mut ffi::PyDictObject)).ma_values.is_null()
    }
    #[cfg(not(Py_3_13))]
    {
        true
    }
}

// `ma_version_tag` is deprecated from 3.12 (gone in 3.14) but still changes on every
// mutation of the dict on 3.12 and 3.13, where its low bits also carry watcher flags.
#[allow(deprecated)]
fn dict_version(dict: *mut ffi::PyObject) -> u64 {
    // SAFETY: callers pass a live object that passed PyDict_Check; dict subclasses share
    // the PyDictObject layout.
    unsafe { (*(dict as *mut ffi::PyDictObject)).ma_version_tag }
}

/// The words of memory an attribute write can change in `dict`, a dict whose values are
/// an object's inline values (CPython 3.13): the dict's `ma_values` pointer (a dict that
/// leaves the inline values gets a table of its own) and each of the `capacity` value
/// slots (`Include/internal/pycore_dict.h`, `struct _dictvalues`: four bytes, then the
/// slots). A write that does not fit the inline values goes through the dict, whose change
/// word sees it. `None` when the layout check failed.
#[cfg(Py_3_13)]
unsafe fn inline_value_words(dict: *mut ffi::PyObject) -> Option<Vec<*const usize>> {
    if !*INLINE_VALUES_LAYOUT.get_or_init(check_inline_values_layout) {
        return None;
    }
    Some(inline_words_unchecked(dict))
}

#[cfg(not(Py_3_13))]
unsafe fn inline_value_words(_dict: *mut ffi::PyObject) -> Option<Vec<*const usize>> {
    None
}

#[cfg(Py_3_13)]
unsafe fn inline_words_unchecked(dict: *mut ffi::PyObject) -> Vec<*const usize> {
    let d = dict as *mut ffi::PyDictObject;
    let values = (*d).ma_values as *const u8;
    let capacity = *values as usize;
    let slots = values.add(std::mem::size_of::<usize>()) as *const usize;
    let mut words = Vec::with_capacity(capacity + 1);
    words.push(std::ptr::addr_of!((*d).ma_values) as *const usize);
    words.extend((0..capacity).map(|i| slots.add(i)));
    words
}

/// Whether [`inline_words_unchecked`] reads 3.13's inline values as they are, checked once
/// on a probe: an instance of a fresh class (made by calling `type` from C, so no Python
/// code runs) gets an attribute, its `__dict__` is materialised, and rewriting the
/// attribute must change exactly the slot holding it, to the new value.
#[cfg(Py_3_13)]
static INLINE_VALUES_LAYOUT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

#[cfg(Py_3_13)]
fn check_inline_values_layout() -> bool {
    // SAFETY: GIL held (called from a read); every object made here is released.
    unsafe {
        let key = ffi::PyUnicode_InternFromString(c"ct_probe".as_ptr());
        let one = ffi::PyLong_FromLong(1_000_001);
        let two = ffi::PyLong_FromLong(1_000_002);
        let name = ffi::PyUnicode_FromString(c"ct_recorder_layout_probe".as_ptr());
        let bases = ffi::PyTuple_New(0);
        let namespace = ffi::PyDict_New();
        let mut made = vec![key, one, two, name, bases, namespace];
        let mut ok = made.iter().all(|o| !o.is_null());
        if ok {
            let class = ffi::PyObject_CallFunctionObjArgs(
                std::ptr::addr_of_mut!(ffi::PyType_Type) as *mut ffi::PyObject,
                name,
                bases,
                namespace,
                std::ptr::null_mut::<ffi::PyObject>(),
            );
            made.push(class);
            ok = !class.is_null();
            let instance = if ok {
                ffi::PyObject_CallNoArgs(class)
            } else {
                std::ptr::null_mut()
            };
            made.push(instance);
            ok = ok && !instance.is_null() && ffi::PyObject_SetAttr(instance, key, one) == 0;
            let dict = if ok {
                ffi::PyObject_GenericGetDict(instance, std::ptr::null_mut())
            } else {
                std::ptr::null_mut()
            };
            made.push(dict);
            ok = ok
                && !dict.is_null()
                && ffi::PyDict_CheckExact(dict) != 0
                && !(*(dict as *mut ffi::PyDictObject)).ma_values.is_null();
            if ok {
                let words = inline_words_unchecked(dict);
                let before: Vec<usize> = words.iter().map(|w| **w).collect();
                ok = words.len() > 1
                    && before[0] == (*(dict as *mut ffi::PyDictObject)).ma_values as usize
                    && before[1..].iter().filter(|v| **v == one as usize).count() == 1
                    && ffi::PyObject_SetAttr(instance, key, two) == 0;
                if ok {
                    let changed: Vec<usize> = (0..words.len())
                        .filter(|&i| *words[i] != before[i])
                        .collect();
                    ok = changed.len() == 1
                        && changed[0] > 0
                        && before[changed[0]] == one as usize
                        && *words[changed[0]] == two as usize;
                }
            }
        }
        for obj in made.into_iter().rev() {
            if !obj.is_null() {
                ffi::Py_DECREF(obj);
            }
        }
        if !ok {
            ffi::PyErr_Clear();
        }
        ok
    }
}

/// The instance dict of `obj` as a new reference, or null (error cleared) when it has none.
/// A type's is its own dict (`PyObject_GenericGetDict` would give a static builtin type of
/// 3.12+, whose `tp_dict` slot is null, a fresh empty dict in that slot).
unsafe fn instance_dict(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    if ffi::PyType_Check(obj) != 0 {
        return type_dict(obj as *mut ffi::PyTypeObject);
    }
    let dict = ffi::PyObject_GenericGetDict(obj, std::ptr::null_mut());
    if dict.is_null() {
        ffi::PyErr_Clear();
        return std::ptr::null_mut();
    }
    if ffi::PyDict_Check(dict) == 0 {
        ffi::Py_DECREF(dict);
        return std::ptr::null_mut();
    }
    dict
}

/// Borrowed lookup in a dict; null (error cleared) when missing.
unsafe fn dict_get(dict: *mut ffi::PyObject, key: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let value = ffi::PyDict_GetItemWithError(dict, key);
    if value.is_null() && !ffi::PyErr_Occurred().is_null() {
        ffi::PyErr_Clear();
    }
    value
}

unsafe fn is_heap_type(ty: *mut ffi::PyTypeObject) -> bool {
    ffi::PyType_HasFeature(ty, ffi::Py_TPFLAGS_HEAPTYPE) != 0
}

/// The text of a `str` (subclasses included) when it has a UTF-8 form; `None` otherwise
/// (lone surrogates).
pub(crate) unsafe fn str_text(value: *mut ffi::PyObject) -> Option<String> {
    if ffi::PyUnicode_Check(value) == 0 {
        return None;
    }
    let mut size: ffi::Py_ssize_t = 0;
    let data = ffi::PyUnicode_AsUTF8AndSize(value, &mut size);
    if data.is_null() {
        ffi::PyErr_Clear();
        return None;
    }
    let bytes = std::slice::from_raw_parts(data as *const u8, size as usize);
    // CPython's UTF-8 form is valid UTF-8 (it is encoded strictly: a string with lone
    // surrogates has none and fails above), so it is not validated a second time.
    debug_assert!(std::str::from_utf8(bytes).is_ok());
    Some(std::str::from_utf8_unchecked(bytes).to_owned())
}

fn classify(value: Option<Bound<'_, PyAny>>) -> AttrValue {
    match value {
        None => AttrValue::Absent,
        // SAFETY: a live object.
        Some(v) => match unsafe { str_text(v.as_ptr()) } {
            Some(text) => AttrValue::Str(text),
            None => AttrValue::NotStr,
        },
    }
}

enum Raw<'py> {
    Found(Bound<'py, PyAny>),
    Absent,
    HookOnly,
}

/// One object being read: its type and instance dict, captured once.
struct View<'py> {
    obj: Bound<'py, PyAny>,
    ty: *mut ffi::PyTypeObject,
    dict: Option<Bound<'py, PyAny>>,
    classes_watched: bool,
    /// Index (in `Reader::deep`) of the record of lookups made in `dict`.
    deep: Option<usize>,
}

/// A hook-free reader that records what it looked at (when `record` is set).
struct Reader<'py> {
    py: Python<'py>,
    record: bool,
    keep: Vec<Py<PyAny>>,
    watches: Vec<Watch>,
    volatile: bool,
    deep: Vec<DeepCheck>,
    notified: Vec<(u32, usize)>,
}

impl<'py> Reader<'py> {
    fn new(py: Python<'py>, record: bool) -> Self {
        // A recorded read of an ordinary module keeps about twenty objects, watches about
        // six words and deep-checks two dicts: sized once, these vectors do not grow (each
        // growth was a reallocation, about sixteen per read).
        let sized = |n: usize| if record { n } else { 0 };
        Reader {
            py,
            record,
            keep: Vec::with_capacity(sized(24)),
            watches: Vec::with_capacity(sized(8)),
            volatile: false,
            deep: Vec::with_capacity(sized(2)),
            notified: Vec::with_capacity(sized(4)),
        }
    }

    /// Looks `key` up in the instance dict of `view`, recording the lookup and keeping its
    /// result alive (so the result's address identifies it for a deep check).
    unsafe fn instance_get(
        &mut self,
        view: &View<'py>,
        key: &Bound<'py, PyAny>,
    ) -> *mut ffi::PyObject {
        let Some(dict) = &view.dict else {
            return std::ptr::null_mut();
        };
        let hit = dict_get(dict.as_ptr(), key.as_ptr());
        if let Some(i) = view.deep {
            self.keep.push(key.clone().unbind());
            if !hit.is_null() {
                self.keep
                    .push(Bound::from_borrowed_ptr(self.py, hit).unbind());
            }
            self.deep[i]
                .lookups
                .push((key.as_ptr() as usize, hit as usize));
        }
        hit
    }

    /// Watches the word at `addr`, which lies inside `owner` (kept alive by the stamp).
    unsafe fn watch(&mut self, owner: *mut ffi::PyObject, addr: *const usize) {
        self.keep
            .push(Bound::from_borrowed_ptr(self.py, owner).unbind());
        self.watches.push(Watch::new(addr));
    }

    /// Watches `dict` for mutations: the legacy engine's dict watcher (3.12+) when it has
    /// one, else the dict's version tag. On 3.13 a dict whose values are an object's
    /// inline values also gets a watch on each value word (see [`version_tag_tracks`]);
    /// when that layout could not be checked, nothing vouches for the dict and the stamp
    /// never holds.
    #[allow(deprecated)]
    unsafe fn watch_dict(&mut self, dict: *mut ffi::PyObject) {
        if let Some(word) = legacy_engine().and_then(|e| e.dict_change_word(dict)) {
            self.notified
                .push((self.watches.len() as u32, dict as usize));
            self.watch(dict, word);
        } else {
            let tag = std::ptr::addr_of!((*(dict as *mut ffi::PyDictObject)).ma_version_tag);
            self.watch(dict, tag as *const usize);
        }
        if !version_tag_tracks(dict) {
            match inline_value_words(dict) {
                Some(words) => {
                    for word in words {
                        self.watches.push(Watch::new(word));
                    }
                }
                None => self.volatile = true,
            }
        }
    }

    fn into_stamp(mut self) -> PyStamp {
        self.narrow_inline_watches();
        PyStamp {
            keep: self.keep,
            watches: self.watches,
            volatile: self.volatile,
            deep: self.deep,
            notified: self.notified,
        }
    }

    /// CPython 3.13: of the inline value words watched for a dict, keeps only the slots
    /// that hold what the read's lookups found (plus the dict's `ma_values` word), when
    /// every lookup found something. A key of a split dict keeps its slot for good (keys
    /// are only ever appended to shared keys, and a dict leaving its inline values gets a
    /// new `ma_values`), so a write to another slot cannot change what these lookups find;
    /// deleting or replacing a found attribute writes its own slot. When a lookup found
    /// nothing, the attribute could appear in any slot, and all stay watched. A ModuleSpec
    /// has 10 slots, of which the scan reads 2 (`origin`, `name`).
    fn narrow_inline_watches(&mut self) {
        if !cfg!(Py_3_13) || !self.record {
            return;
        }
        let mut keep = vec![true; self.watches.len()];
        let mut any = false;
        for d in &self.deep {
            // [watch] the change word, [watch + 1] ma_values, then the value slots.
            if d.words < 3 || d.lookups.iter().any(|&(_, found)| found == 0) {
                continue;
            }
            let slots = (d.watch + 2) as usize..(d.watch + d.words) as usize;
            for (watch, kept) in self.watches[slots.clone()].iter().zip(&mut keep[slots]) {
                if !d.lookups.iter().any(|&(_, found)| found == watch.want) {
                    *kept = false;
                    any = true;
                }
            }
        }
        if !any {
            return;
        }
        let mut new_index = Vec::with_capacity(keep.len());
        let mut next = 0u32;
        for &k in &keep {
            new_index.push(next);
            next += u32::from(k);
        }
        for d in &mut self.deep {
            let range = d.watch as usize..(d.watch + d.words) as usize;
            let kept = keep[range].iter().filter(|k| **k).count() as u32;
            d.watch = new_index[d.watch as usize];
            d.words = kept;
        }
        for (i, _) in &mut self.notified {
            *i = new_index[*i as usize];
        }
        let mut k = keep.into_iter();
        self.watches.retain(|_| k.next().unwrap_or(true));
    }

    fn view(&mut self, obj: Bound<'py, PyAny>) -> View<'py> {
        // SAFETY: live objects, GIL held.
        unsafe {
            let ty = ffi::Py_TYPE(obj.as_ptr());
            let raw_dict = instance_dict(obj.as_ptr());
            let dict = if raw_dict.is_null() {
                None
            } else {
                Some(Bound::from_owned_ptr(self.py, raw_dict))
            };
            if self.record {
                // The type is watched only once a read consults it (`get`): an attribute
                // found in the instance dict does not depend on the class, and
                // `__class__` assignment keeps the instance-dict location (CPython only
                // allows it between layout-compatible types).
                //
                // A module's or a type's `__dict__` cannot be rebound; any other
                // object's can, so the dict slot is watched (`None`: the object has no
                // instance dict).
                if ffi::PyModule_Check(obj.as_ptr()) == 0 && ffi::PyType_Check(obj.as_ptr()) == 0 {
                    let slot = _PyObject_GetDictPtr(obj.as_ptr());
                    if slot.is_null() {
                        ffi::PyErr_Clear();
                        if dict.is_some() {
                            // A dict that does not live in a slot: nothing to watch.
                            self.volatile = true;
                        }
                    } else if *slot != raw_dict {
                        self.volatile = true;
                    } else {
                        self.watch(obj.as_ptr(), slot as *const usize);
                    }
                }
            }
            let mut deep = None;
            if self.record {
                // The object itself stays alive with the stamp: on 3.13 the dict's values
                // may be the object's inline values, whose words the stamp watches.
                self.keep.push(obj.clone().unbind());
                if let Some(d) = &dict {
                    let first = self.watches.len();
                    self.watch_dict(d.as_ptr());
                    deep = Some(self.deep.len());
                    self.deep.push(DeepCheck {
                        watch: first as u32,
                        words: (self.watches.len() - first) as u32,
                        dict: d.as_ptr() as usize,
                        lookups: Lookups::default(),
                    });
                }
            }
            View {
                obj,
                ty,
                dict,
                classes_watched: false,
                deep,
            }
        }
    }

    /// Records the state of a type that a class-attribute lookup depends on.
    unsafe fn watch_type(&mut self, ty: *mut ffi::PyTypeObject) {
        if !self.record || !is_heap_type(ty) {
            return;
        }
        // The MRO tuple is kept alive too, so a new tuple cannot reuse its address.
        let mro = (*ty).tp_mro;
        if !mro.is_null() {
            self.keep
                .push(Bound::from_borrowed_ptr(self.py, mro).unbind());
        }
        self.watch(
            ty as *mut ffi::PyObject,
            std::ptr::addr_of!((*ty).tp_mro) as *const usize,
        );
        for base in mro_types(ty) {
            if is_heap_type(base) {
                let dict = (*base).tp_dict;
                if !dict.is_null() {
                    self.watch_dict(dict);
                }
            }
        }
    }

    fn get(&mut self, view: &mut View<'py>, name: &Bound<'py, PyAny>) -> Raw<'py> {
        // SAFETY: live objects, GIL held; borrowed results are turned into owned Bounds
        // before anything else can run.
        unsafe {
            let hit = self.instance_get(view, name);
            if !hit.is_null() {
                return Raw::Found(Bound::from_borrowed_ptr(self.py, hit));
            }
            if !view.classes_watched {
                view.classes_watched = true;
                if self.record {
                    let obj = view.obj.as_ptr();
                    self.keep.push(
                        Bound::from_borrowed_ptr(self.py, view.ty as *mut ffi::PyObject).unbind(),
                    );
                    self.watch(obj, std::ptr::addr_of!((*obj).ob_type) as *const usize);
                }
                self.watch_type(view.ty);
            }
            // The interpreter's own MRO lookup: it knows where each version keeps the
            // dict of every type (watch_type above watched the heap types' dicts).
            let class_attr = _PyType_Lookup(view.ty, name.as_ptr());
            if !class_attr.is_null() {
                let attr = Bound::from_borrowed_ptr(self.py, class_attr);
                let attr_ty = ffi::Py_TYPE(class_attr);
                self.watch_type(attr_ty);
                match (*attr_ty).tp_descr_get {
                    None => return Raw::Found(attr),
                    Some(get) if safe_descriptor(class_attr) => {
                        self.volatile = true;
                        let got = get(class_attr, view.obj.as_ptr(), view.ty as *mut ffi::PyObject);
                        if !got.is_null() {
                            return Raw::Found(Bound::from_owned_ptr(self.py, got));
                        }
                        ffi::PyErr_Clear();
                    }
                    Some(_) => return Raw::HookOnly,
                }
            }
            if self.hooked(view) {
                Raw::HookOnly
            } else {
                Raw::Absent
            }
        }
    }

    /// Whether a hook could produce an attribute that plain lookups did not find.
    unsafe fn hooked(&mut self, view: &View<'py>) -> bool {
        let getattro = (*view.ty).tp_getattro.map(|f| f as usize);
        let generic = ffi::PyBaseObject_Type.tp_getattro.map(|f| f as usize);
        let module = ffi::PyModule_Type.tp_getattro.map(|f| f as usize);
        let type_ = ffi::PyType_Type.tp_getattro.map(|f| f as usize);
        if getattro == generic || getattro == type_ {
            return false;
        }
        if getattro == module {
            // PEP 562: the module's own `__getattr__`.
            let key = pyo3::intern!(self.py, "__getattr__");
            return !self.instance_get(view, key.as_any()).is_null();
        }
        true
    }

    fn attr(&mut self, view: &mut View<'py>, name: &Bound<'py, PyAny>) -> AttrValue {
        match self.get(view, name) {
            Raw::Found(v) => classify(Some(v)),
            Raw::Absent => AttrValue::Absent,
            Raw::HookOnly => AttrValue::HookOnly,
        }
    }

    fn spec_attrs(&mut self, spec: Bound<'py, PyAny>) -> SpecValue {
        if spec.is_none() {
            return SpecValue::None;
        }
        let py = self.py;
        let mut view = self.view(spec);
        let origin = self.attr(&mut view, pyo3::intern!(py, "origin").as_any());
        let name = self.attr(&mut view, pyo3::intern!(py, "name").as_any());
        SpecValue::Object { origin, name }
    }

    fn object_attrs(&mut self, obj: Bound<'py, PyAny>) -> ObjectAttrs {
        let py = self.py;
        let mut view = self.view(obj);
        let spec = match self.get(&mut view, pyo3::intern!(py, "__spec__").as_any()) {
            Raw::Found(spec) => self.spec_attrs(spec),
            Raw::Absent => SpecValue::Absent,
            Raw::HookOnly => SpecValue::HookOnly,
        };
        let file = self.attr(&mut view, pyo3::intern!(py, "__file__").as_any());
        let cached = self.attr(&mut view, pyo3::intern!(py, "__cached__").as_any());
        let name = self.attr(&mut view, pyo3::intern!(py, "__name__").as_any());
        ObjectAttrs {
            spec,
            file,
            cached,
            name,
        }
    }
}

/// Descriptors whose `__get__` runs no Python code: slot reads (`member_descriptor`) and
/// the C getters of `type` itself.
unsafe fn safe_descriptor(descr: *mut ffi::PyObject) -> bool {
    let ty = ffi::Py_TYPE(descr);
    if ty == std::ptr::addr_of_mut!(ffi::PyMemberDescr_Type) {
        return true;
    }
    ty == std::ptr::addr_of_mut!(ffi::PyGetSetDescr_Type)
        && (*(descr as *mut ffi::PyDescrObject)).d_type == std::ptr::addr_of_mut!(ffi::PyType_Type)
}

/// The types of `ty.__mro__` (just `ty` when it has no MRO yet).
unsafe fn mro_types(ty: *mut ffi::PyTypeObject) -> Vec<*mut ffi::PyTypeObject> {
    let mro = (*ty).tp_mro;
    if mro.is_null() || ffi::PyTuple_Check(mro) == 0 {
        return vec![ty];
    }
    let n = ffi::PyTuple_GET_SIZE(mro);
    (0..n)
        .map(|i| ffi::PyTuple_GET_ITEM(mro, i))
        .filter(|base| ffi::PyType_Check(*base) != 0)
        .map(|base| base as *mut ffi::PyTypeObject)
        .collect()
}

/// The `(key, value)` pairs of one `sys.modules` snapshot, in order.
type Items = Arc<[(Py<PyAny>, Py<PyAny>)]>;

struct Snapshot {
    dict: Py<PyAny>,
    version: u64,
    items: Items,
}

/// The real `sys.modules`, read hook-free (see the module documentation).
///
/// Keep one per session: it remembers the last snapshot and reuses it while `sys.modules`
/// is unchanged (same dict object, same version). The snapshot keeps the entries it holds
/// alive until the next lookup replaces it.
pub struct PySysModules {
    last: RefCell<Option<Snapshot>>,
    /// The legacy engine's state (its incremental scanner), shared by every resolver
    /// reading this `sys.modules` (spec L7's two resolvers, and the shadow engine's).
    engine_state: RefCell<Option<Box<dyn SysModulesState>>>,
}

impl Default for PySysModules {
    fn default() -> Self {
        PySysModules {
            last: RefCell::new(None),
            engine_state: RefCell::new(legacy_engine().map(|e| e.sys_modules_state())),
        }
    }
}

impl PySysModules {
    /// A reader of `sys.modules`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The legacy engine's state beside this reader (`None` in a build without it).
    pub fn engine_state(&self) -> &RefCell<Option<Box<dyn SysModulesState>>> {
        &self.engine_state
    }

    /// Drops the remembered snapshot and the scanner's cache (say at the end of a
    /// session).
    pub fn release(&self) {
        self.last.borrow_mut().take();
        if let Some(state) = self.engine_state.borrow_mut().as_mut() {
            state.release();
        }
    }

    /// Opens a naming moment, closed when the guard is dropped: meanwhile every legacy
    /// lookup of a target already scanned in the moment gets that answer, as if all
    /// resolvers had looked at `sys.modules` at the same instant. Open it only around code
    /// that runs no program code (a tracer callback naming one code object).
    pub fn moment(&self) -> Moment<'_> {
        if let Some(state) = self.engine_state.borrow_mut().as_mut() {
            state.begin_moment();
        }
        Moment { modules: self }
    }

    fn snapshot(&self, py: Python<'_>) -> Option<Items> {
        // SAFETY: GIL held; `sys.modules` is looked up in the sys module's dict (no hook).
        unsafe {
            let modules = ffi::PySys_GetObject(c"modules".as_ptr());
            if modules.is_null() || ffi::PyDict_Check(modules) == 0 {
                return None;
            }
            let version = dict_version(modules);
            let mut last = self.last.borrow_mut();
            if let Some(snap) = last.as_ref() {
                if snap.dict.as_ptr() == modules && snap.version == version {
                    return Some(snap.items.clone());
                }
            }
            let mut items = Vec::with_capacity(ffi::PyDict_Size(modules).max(0) as usize);
            let mut pos: ffi::Py_ssize_t = 0;
            let mut key = std::ptr::null_mut();
            let mut value = std::ptr::null_mut();
            while ffi::PyDict_Next(modules, &mut pos, &mut key, &mut value) != 0 {
                items.push((
                    Bound::from_borrowed_ptr(py, key).unbind(),
                    Bound::from_borrowed_ptr(py, value).unbind(),
                ));
            }
            let items: Items = items.into();
            *last = Some(Snapshot {
                dict: Bound::from_borrowed_ptr(py, modules).unbind(),
                version,
                items: items.clone(),
            });
            Some(items)
        }
    }
}

/// A naming moment of [`PySysModules::moment`]; dropping it closes the moment.
pub struct Moment<'a> {
    modules: &'a PySysModules,
}

impl Drop for Moment<'_> {
    fn drop(&mut self) {
        if let Ok(mut state) = self.modules.engine_state.try_borrow_mut() {
            if let Some(state) = state.as_mut() {
                state.end_moment();
            }
        }
    }
}

/// One `(key, value)` pair of a `sys.modules` dict, as a [`ModuleEntry`].
pub(crate) struct PyEntry<'a, 'py> {
    pub(crate) py: Python<'py>,
    pub(crate) key: &'a Bound<'py, PyAny>,
    pub(crate) value: &'a Bound<'py, PyAny>,
}

impl ModuleEntry for PyEntry<'_, '_> {
    fn id(&self) -> EntryId {
        EntryId {
            key: self.key.as_ptr() as usize as u64,
            value: self.value.as_ptr() as usize as u64,
        }
    }

    fn key_is_str(&self) -> bool {
        // SAFETY: live object. Encodability is decided once per key object: CPython caches
        // the UTF-8 form of a str.
        unsafe {
            if ffi::PyUnicode_Check(self.key.as_ptr()) == 0 {
                return false;
            }
            let data = ffi::PyUnicode_AsUTF8AndSize(self.key.as_ptr(), std::ptr::null_mut());
            if data.is_null() {
                ffi::PyErr_Clear();
                return false;
            }
            true
        }
    }

    fn value_is_none(&self) -> bool {
        self.value.is_none()
    }

    fn read(&self) -> EntryRead {
        let mut reader = Reader::new(self.py, true);
        let attrs = reader.object_attrs(self.value.clone());
        let mut stamp = reader.into_stamp();
        // The pair's identity (EntryId) must not be reused while the stamp lives.
        stamp.keep.push(self.key.clone().unbind());
        stamp.keep.push(self.value.clone().unbind());
        // SAFETY: live object.
        let key = unsafe { str_text(self.key.as_ptr()) }.unwrap_or_default();
        EntryRead {
            key,
            attrs,
            stamp: Stamp {
                inner: StampInner::Python(stamp),
            },
        }
    }

    fn is_current(&self, stamp: &Stamp) -> bool {
        match &stamp.inner {
            StampInner::Python(p) => p.holds(),
            StampInner::Version(_) => false,
        }
    }
}

impl ModuleTable for PySysModules {
    fn py_sys_modules(&self) -> Option<&PySysModules> {
        Some(self)
    }

    fn for_each_entry(&self, visit: &mut dyn FnMut(&dyn ModuleEntry) -> ControlFlow<()>) {
        Python::with_gil(|py| {
            let Some(items) = self.snapshot(py) else {
                return;
            };
            for (key, value) in items.iter() {
                let key = key.bind(py);
                let value = value.bind(py);
                if visit(&PyEntry { py, key, value }).is_break() {
                    break;
                }
            }
        })
    }
}

/// Reads attribute `name` of `obj` the hook-free way.
pub fn read_attr_hook_free(obj: &Bound<'_, PyAny>, name: &str) -> AttrValue {
    let py = obj.py();
    let mut reader = Reader::new(py, false);
    let mut view = reader.view(obj.clone());
    let name = pyo3::types::PyString::new(py, name);
    reader.attr(&mut view, name.as_any())
}

/// Reads everything one `sys.modules` value offers to the legacy scan, hook-free (mainly
/// for tests and diagnostics).
pub fn read_module_attrs_hook_free(obj: &Bound<'_, PyAny>) -> ObjectAttrs {
    Reader::new(obj.py(), false).object_attrs(obj.clone())
}

/// `type(value).__name__`, from the C type name (no Python code runs).
fn type_name(value: &Bound<'_, PyAny>) -> String {
    // SAFETY: live object; tp_name is a NUL-terminated C string owned by the type.
    let full = unsafe { CStr::from_ptr((*ffi::Py_TYPE(value.as_ptr())).tp_name) };
    let full = full.to_string_lossy();
    match full.rfind('.') {
        Some(i) => full[i + 1..].to_string(),
        None => full.into_owned(),
    }
}

/// The globals facts of a frame: [`GlobalsName`] from `globals["__name__"]` and the
/// `__spec__.name` of the globals (when a non-empty `str`), both read without running
/// Python code (`PyDict_GetItemWithError`, then the hook-free attribute read). `globals`
/// is the frame's `f_globals`; `None` (or a non-dict) gives [`GlobalsName::NoGlobals`].
///
/// A `__name__` that is a `str` holding lone surrogates is kept, with U+FFFD in their place.
pub fn read_globals_facts(globals: Option<&Bound<'_, PyAny>>) -> (GlobalsName, Option<String>) {
    let Some(globals) = globals else {
        return (GlobalsName::NoGlobals, None);
    };
    let py = globals.py();
    // SAFETY: GIL held, live dict.
    unsafe {
        if ffi::PyDict_Check(globals.as_ptr()) == 0 {
            return (GlobalsName::NoGlobals, None);
        }
        let name_ptr = dict_get(globals.as_ptr(), pyo3::intern!(py, "__name__").as_ptr());
        let globals_name = if name_ptr.is_null() {
            GlobalsName::Missing
        } else {
            let value = Bound::from_borrowed_ptr(py, name_ptr);
            match value.downcast::<pyo3::types::PyString>() {
                Ok(s) => GlobalsName::Str(s.to_string_lossy().into_owned()),
                Err(_) => GlobalsName::NotStr {
                    type_name: type_name(&value),
                },
            }
        };
        let spec_ptr = dict_get(globals.as_ptr(), pyo3::intern!(py, "__spec__").as_ptr());
        let spec_name = if spec_ptr.is_null() {
            None
        } else {
            let spec = Bound::from_borrowed_ptr(py, spec_ptr);
            if spec.is_none() {
                None
            } else {
                match read_attr_hook_free(&spec, "name") {
                    AttrValue::Str(s) if !s.is_empty() => Some(s),
                    _ => None,
                }
            }
        };
        (globals_name, spec_name)
    }
}
