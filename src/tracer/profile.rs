//! The CPython 3.11 back end of evidence-only mode (`--evidence-only`): a C profile hook
//! (`PyEval_SetProfile`) on every thread, instead of the trace function.
//!
//! Evidence needs one thing per code object: its first sight, with the globals of the frame
//! that runs it. A profile hook gets call and return events only (no line events, and a
//! 3.11 profile function costs what a no-op one does: the interpreter's tracing dispatch,
//! see docs/performance.md); [`profile_hook`] returns at once for every event but a call.
//! A code object seen for the first time is named, filtered and compared by the shared
//! [`Recorder`], which records nothing: the session has no trace.
//!
//! First sight without a lookup per call: once a code object has been through the recorder,
//! it carries this session's mark in a slot of its own `co_extra` (PEP 523's per-code
//! scratch space: an index from `_PyEval_RequestCodeExtraIndex`, once per process, set with
//! `_PyCode_SetExtra`). A call of a marked code object reads that slot straight from the
//! code object ([`SeenSlot`]) and returns: no state lock, no hash lookup, no `catch_unwind`.
//! The mark is a session number, never reused in the process, so a code object that
//! outlives a session is new to the next one; a new code object (a module executed again,
//! `exec` of fresh source) has no mark and is compared, as in a recording. Everything else
//! (the first call of a code object, a pending fork or SIGTERM, the program's entry frame,
//! a process with no `co_extra` index left) takes the recorder's path, one lookup under the
//! state lock, as before. Docs and figures: docs/shadow-mode.md, docs/performance.md.
//!
//! The program's entry frame is made the bottom of its stack as in a recording
//! ([`settrace::cut_entry_frame`]); the return events are looked at only to restore that
//! link, with one atomic comparison.
//!
//! Threads: installed on every existing thread state (`_PyEval_SetProfile`), and on threads
//! started later through `threading.setprofile`, whose first Python-level profile call lands
//! in [`profile_bootstrap`], which swaps the C hook in. `sys.getprofile()` returns that
//! bootstrap function while the hook is installed, so a program that saves and restores the
//! profile function hands the hook back.
//!
//! Limits (docs/shadow-mode.md): a program that installs its own profile function
//! (`sys.setprofile`, `cProfile`) replaces the hook on that thread, and code first seen there
//! afterwards is not compared; `_thread.start_new_thread` threads are not covered (as with the
//! 3.11 trace function). The program's own `sys.settrace` coexists with this hook.

use std::ffi::c_void;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};

use pyo3::ffi as py;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::PyFrame;

use super::{ffi, run_hook, settrace, Hook, Recorder};

/// The program's entry frame while its `previous` link is cut (0: none): its return event
/// restores the link.
static ENTRY_FRAME: AtomicUsize = AtomicUsize::new(0);

/// The profile function installed on every thread in evidence-only mode.
///
/// Kept small on purpose: the common event (a call of a code object this session has
/// seen, or any other event) touches a few words and returns, with no register spills;
/// everything else is in the out-of-line [`call_slow`] and [`entry_return`].
///
/// # Safety
/// Called by CPython with the GIL held and a valid `frame`.
pub unsafe extern "C" fn profile_hook(
    _obj: *mut py::PyObject,
    frame: *mut py::PyFrameObject,
    what: c_int,
    _arg: *mut py::PyObject,
) -> c_int {
    if what == py::PyTrace_CALL {
        // One relaxed load of each flag and a read of the code object's own slot.
        let mark = MARK.load(Ordering::Relaxed);
        if mark != 0
            && crate::process::PENDING.load(Ordering::Relaxed) == 0
            && super::ENTRY_CODE.load(Ordering::Relaxed) == 0
            && SLOT.seen(frame, mark)
        {
            // The GIL serialises every hook: a plain load and store, no locked add.
            let n = super::monitoring::LIGHT_CALLBACKS.load(Ordering::Relaxed);
            super::monitoring::LIGHT_CALLBACKS.store(n + 1, Ordering::Relaxed);
            return 0;
        }
        return call_slow(frame);
    }
    if what == py::PyTrace_RETURN && ENTRY_FRAME.load(Ordering::Relaxed) == frame as usize {
        entry_return(frame);
    }
    0
}

/// A call the fast path does not settle: through the recorder ([`first_sight`]).
#[cold]
#[inline(never)]
unsafe fn call_slow(frame: *mut py::PyFrameObject) -> c_int {
    match run_hook(|py, rec| first_sight(py, rec, frame)) {
        Hook::Done(()) | Hook::Idle => 0,
        Hook::Raise => -1,
    }
}

/// The program's entry frame returns: its link is restored.
#[cold]
#[inline(never)]
unsafe fn entry_return(frame: *mut py::PyFrameObject) {
    ENTRY_FRAME.store(0, Ordering::Relaxed);
    let _ = run_hook(|_py, rec| {
        settrace::restore_entry_frame(rec, frame);
        Ok(())
    });
}

/// A call: registers (names, filters, compares) the frame's code object if it is new, and
/// marks it seen for the fast path of [`profile_hook`].
#[inline]
fn first_sight(
    py: Python<'_>,
    rec: &mut Recorder,
    frame: *mut py::PyFrameObject,
) -> Result<(), String> {
    if super::ENTRY_CODE.load(Ordering::Relaxed) != 0 {
        settrace::cut_entry_frame(rec, frame);
        if let Some((f, _)) = rec.entry_cut {
            ENTRY_FRAME.store(f, Ordering::Relaxed);
        }
    }
    // SAFETY: `frame` is the live frame CPython passed to the hook. With the 3.11 layout
    // verified the code is read borrowed; otherwise GetCode's new reference is released.
    let (code, owned) = unsafe {
        if rec.fast_locals {
            (ffi::frame_code_311(frame), false)
        } else {
            (py::PyFrame_GetCode(frame) as *mut py::PyObject, true)
        }
    };
    let result = rec.code_idx(py, code, || {
        // SAFETY: live frame; GetGlobals returns a new reference (or NULL).
        let globals = unsafe { ffi::PyFrame_GetGlobals(frame) };
        (!globals.is_null()).then(|| unsafe { Bound::from_owned_ptr(py, globals) })
    });
    if result.is_ok() {
        // Registered now or before (the launcher's frames, code seen while the state lock
        // was busy): from here on its calls take the fast path.
        SLOT.mark(code, MARK.load(Ordering::Relaxed));
    }
    if owned {
        unsafe { py::Py_DECREF(code) };
    }
    if let Ok((_, true)) = result {
        // Threads are counted where code is first seen (no per-call thread bookkeeping).
        rec.current_thread();
    }
    result.map(|_| ())
}

// ---- the per-code "seen" mark -------------------------------------------------------------

/// This session's mark while the hook is installed (0: no fast path, every call takes the
/// recorder's path). A new number per session, never reused in the process.
static MARK: AtomicUsize = AtomicUsize::new(0);
/// The last mark handed out.
static SESSIONS: AtomicUsize = AtomicUsize::new(0);
/// The `co_extra` slot the marks live in.
static SLOT: SeenSlot = SeenSlot::new();

/// The `co_extra` slot of this process (`_PyEval_RequestCodeExtraIndex`, requested once:
/// indices cannot be given back), and how it is read.
///
/// CPython 3.11's `_PyCode_GetExtra` is a function call with a type check; the fast path
/// reads the slot itself instead: the code object's `co_extra` pointer, at an offset found
/// at session start by setting a mark through `_PyCode_SetExtra` on a probe code object
/// and finding it through the layout (`_PyCodeObjectExtra`: `ce_size`, then the slots). If
/// the probe does not find it, the fast path calls `_PyCode_GetExtra`.
struct SeenSlot {
    /// The index (-1: none left in this process; -2: not requested yet).
    index: AtomicIsize,
    /// Byte offset of `co_extra` in the code object (0: unknown, call `_PyCode_GetExtra`).
    offset: AtomicUsize,
    /// Read the frame's code borrowed from the verified 3.11 frame layout.
    borrowed_code: AtomicBool,
    /// `offset` when the whole read is inline (an index, the offset, borrowed code), else
    /// 0: the one word the fast path tests.
    inline_offset: AtomicUsize,
}

/// CPython's `_PyCodeObjectExtra` (Include/internal/pycore_code.h, 3.11).
#[repr(C)]
struct CodeExtra311 {
    ce_size: py::Py_ssize_t,
    ce_extras: [*mut c_void; 1],
}

impl SeenSlot {
    const fn new() -> Self {
        SeenSlot {
            index: AtomicIsize::new(-2),
            offset: AtomicUsize::new(0),
            borrowed_code: AtomicBool::new(false),
            inline_offset: AtomicUsize::new(0),
        }
    }

    /// Whether the frame's code object carries `mark`.
    ///
    /// # Safety
    /// GIL held; `frame` a live frame.
    #[inline(always)]
    unsafe fn seen(&self, frame: *mut py::PyFrameObject, mark: usize) -> bool {
        let offset = self.inline_offset.load(Ordering::Relaxed);
        if offset == 0 {
            return self.seen_out_of_line(frame, mark);
        }
        let code = ffi::frame_code_311(frame);
        let extra = *(code as *const u8)
            .add(offset)
            .cast::<*const CodeExtra311>();
        if extra.is_null() {
            return false;
        }
        let index = self.index.load(Ordering::Relaxed);
        if (*extra).ce_size <= index {
            return false;
        }
        let slots = std::ptr::addr_of!((*extra).ce_extras).cast::<*mut c_void>();
        *slots.offset(index) as usize == mark
    }

    /// [`Self::seen`] when part of the read cannot be inline (no verified frame layout, no
    /// `co_extra` offset): `PyFrame_GetCode`, `_PyCode_GetExtra`.
    #[cold]
    #[inline(never)]
    unsafe fn seen_out_of_line(&self, frame: *mut py::PyFrameObject, mark: usize) -> bool {
        let index = self.index.load(Ordering::Relaxed);
        if index < 0 {
            return false;
        }
        if !self.borrowed_code.load(Ordering::Relaxed) {
            let code = py::PyFrame_GetCode(frame) as *mut py::PyObject;
            let found = self.get(code, index) == mark;
            py::Py_DECREF(code);
            return found;
        }
        self.get(ffi::frame_code_311(frame), index) == mark
    }

    /// The slot's value in `code` (0 when unset).
    ///
    /// # Safety
    /// GIL held; `code` a live code object; `index` this process's index.
    #[inline(always)]
    unsafe fn get(&self, code: *mut py::PyObject, index: isize) -> usize {
        let offset = self.offset.load(Ordering::Relaxed);
        if offset != 0 {
            let extra = *(code as *const u8)
                .add(offset)
                .cast::<*const CodeExtra311>();
            if extra.is_null() || (*extra).ce_size <= index {
                return 0;
            }
            let slots = std::ptr::addr_of!((*extra).ce_extras).cast::<*mut c_void>();
            return *slots.offset(index) as usize;
        }
        let mut value: *mut c_void = std::ptr::null_mut();
        if get_extra(code, index, &mut value) != 0 {
            py::PyErr_Clear();
            return 0;
        }
        value as usize
    }

    /// Puts `mark` into `code`'s slot (nothing when there is no slot or no mark).
    fn mark(&self, code: *mut py::PyObject, mark: usize) {
        let index = self.index.load(Ordering::Relaxed);
        if index < 0 || mark == 0 {
            return;
        }
        // SAFETY: GIL held (a hook); `code` a live code object. A failure (no memory) only
        // leaves this code on the recorder's path.
        unsafe {
            if set_extra(code, index, mark as *mut c_void) != 0 {
                py::PyErr_Clear();
            }
        }
    }

    /// At install: the index (requested the first time), the layout probe, and whether the
    /// frame's code can be read borrowed. Returns whether the fast path is on.
    fn prepare(&self, py: Python<'_>, borrowed_code: bool) -> bool {
        if self.index.load(Ordering::Relaxed) == -2 {
            // SAFETY: GIL held. No free function: a mark is a number, not an allocation.
            let index = unsafe { request_extra_index(None) };
            self.index.store(index.max(-1), Ordering::Relaxed);
            if index >= 0 {
                self.offset
                    .store(probe_offset(py, index), Ordering::Relaxed);
            }
        }
        self.borrowed_code.store(borrowed_code, Ordering::Relaxed);
        let ready = self.index.load(Ordering::Relaxed) >= 0;
        let offset = self.offset.load(Ordering::Relaxed);
        let inline = if ready && borrowed_code { offset } else { 0 };
        self.inline_offset.store(inline, Ordering::Relaxed);
        ready
    }
}

/// Finds `co_extra`'s offset in a code object without assuming a layout: snapshots the
/// pointer-sized words of a fresh probe code object, sets its slot through
/// `_PyCode_SetExtra`, and looks for the one word that changed, from NULL to a pointer (the
/// `_PyCodeObjectExtra` CPython just allocated). That pointer, and nothing unverified, is
/// then read as the slot array, and must hold the probe's value at `index`. 0 when any of
/// this does not hold (the fast path then calls `_PyCode_GetExtra`).
fn probe_offset(py: Python<'_>, index: isize) -> usize {
    let probe = || -> PyResult<usize> {
        let code = py.eval(c"compile('0', '<ct-recorder probe>', 'eval')", None, None)?;
        let ptr = code.as_ptr();
        let word = std::mem::size_of::<usize>();
        // SAFETY: GIL held; `ptr` is a live code object owned by `code`, and only words
        // within its basic size are read.
        let size = unsafe { (*py::Py_TYPE(ptr)).tp_basicsize } as usize;
        let words = size / word;
        let read = |i: usize| unsafe { *(ptr as *const usize).add(i) };
        let before: Vec<usize> = (0..words).map(read).collect();
        let value = 0x5eed_c0de_usize;
        if unsafe { set_extra(ptr, index, value as *mut c_void) } != 0 {
            return Err(PyErr::fetch(py));
        }
        let changed: Vec<usize> = (0..words).filter(|&i| read(i) != before[i]).collect();
        let offset = match changed[..] {
            [i] if before[i] == 0 && read(i) % std::mem::align_of::<CodeExtra311>() == 0 => {
                i * word
            }
            _ => return Ok(0),
        };
        let probe_slot = SeenSlot {
            index: AtomicIsize::new(index),
            offset: AtomicUsize::new(offset),
            borrowed_code: AtomicBool::new(false),
            inline_offset: AtomicUsize::new(0),
        };
        // SAFETY: the word at `offset` is the allocation `_PyCode_SetExtra` made just now.
        let through_layout = unsafe { probe_slot.get(ptr, index) };
        let mut through_api: *mut c_void = std::ptr::null_mut();
        let api_ok = unsafe { get_extra(ptr, index, &mut through_api) } == 0;
        // The probe is freed with `code`; no free function is registered either way.
        unsafe { set_extra(ptr, index, std::ptr::null_mut()) };
        let ok = api_ok && through_layout == value && through_api as usize == value;
        Ok(if ok { offset } else { 0 })
    };
    match probe() {
        Ok(offset) => offset,
        Err(e) => {
            unsafe { py::PyErr_Clear() };
            tracing::debug!("co_extra layout probe failed: {e}");
            0
        }
    }
}

// PEP 523's per-code scratch slots (Include/cpython/code.h, Include/cpython/ceval.h).
// Declared here with CPython's own signatures: the index is a `Py_ssize_t`, and the free
// function may be NULL.
#[cfg(not(Py_3_12))]
extern "C" {
    fn _PyEval_RequestCodeExtraIndex(free: Option<py::freefunc>) -> py::Py_ssize_t;
    fn _PyCode_GetExtra(
        code: *mut py::PyObject,
        index: py::Py_ssize_t,
        extra: *mut *mut c_void,
    ) -> c_int;
    fn _PyCode_SetExtra(
        code: *mut py::PyObject,
        index: py::Py_ssize_t,
        extra: *mut c_void,
    ) -> c_int;
}

/// `_PyEval_RequestCodeExtraIndex` (-1: none left).
#[cfg(not(Py_3_12))]
unsafe fn request_extra_index(free: Option<py::freefunc>) -> isize {
    _PyEval_RequestCodeExtraIndex(free)
}

#[cfg(not(Py_3_12))]
unsafe fn get_extra(code: *mut py::PyObject, index: isize, value: &mut *mut c_void) -> c_int {
    _PyCode_GetExtra(code, index, value)
}

#[cfg(not(Py_3_12))]
unsafe fn set_extra(code: *mut py::PyObject, index: isize, value: *mut c_void) -> c_int {
    _PyCode_SetExtra(code, index, value)
}

// Builds for 3.12+ never install the profile hook (see `set_profile`): no slot there.
#[cfg(Py_3_12)]
unsafe fn request_extra_index(_free: Option<py::freefunc>) -> isize {
    -1
}

#[cfg(Py_3_12)]
unsafe fn get_extra(_code: *mut py::PyObject, _index: isize, value: &mut *mut c_void) -> c_int {
    *value = std::ptr::null_mut();
    0
}

#[cfg(Py_3_12)]
unsafe fn set_extra(_code: *mut py::PyObject, _index: isize, _value: *mut c_void) -> c_int {
    0
}

static HOOK: GILOnceCell<PyObject> = GILOnceCell::new();

/// The profile object installed with the C hook (what `sys.getprofile()` returns), and
/// `threading.setprofile`'s function: [`profile_bootstrap`].
fn hook_object(py: Python<'_>) -> PyResult<&PyObject> {
    HOOK.get_or_try_init(py, || {
        Ok(wrap_pyfunction!(profile_bootstrap, py)?.into_any().unbind())
    })
}

/// Sets the profile hook on every existing thread state and on threads started later.
pub fn install_all(py: Python<'_>) -> PyResult<()> {
    ENTRY_FRAME.store(0, Ordering::Relaxed);
    let borrowed_code = super::RECORDER
        .try_lock(py)
        .and_then(|g| g.as_ref().map(|r| r.fast_locals))
        .unwrap_or(false);
    let mark = if SLOT.prepare(py, borrowed_code) {
        SESSIONS.fetch_add(1, Ordering::Relaxed) + 1
    } else {
        0
    };
    MARK.store(mark, Ordering::Relaxed);
    super::monitoring::LIGHT_CALLBACKS.store(0, Ordering::Relaxed);
    let hook = hook_object(py)?.clone_ref(py);
    py.import("threading")?
        .call_method1("setprofile", (&hook,))?;
    settrace::for_each_thread_state(|ts| {
        set_profile(ts, Some(profile_hook), hook.as_ptr());
    });
    if unsafe { !py::PyErr_Occurred().is_null() } {
        return Err(PyErr::fetch(py));
    }
    Ok(())
}

/// Removes the hook from every thread. Never fails: errors are cleared.
pub fn uninstall_all(py: Python<'_>) {
    // First: from here on no call takes the fast path (a stopped session has no state).
    MARK.store(0, Ordering::Relaxed);
    settrace::for_each_thread_state(|ts| {
        if set_profile(ts, None, std::ptr::null_mut()) != 0 {
            unsafe { py::PyErr_Clear() };
        }
    });
    if let Ok(threading) = py.import("threading") {
        let _ = threading.call_method1("setprofile", (py.None(),));
    }
    unsafe {
        if !py::PyErr_Occurred().is_null() {
            py::PyErr_Clear();
        }
    }
}

#[cfg(not(Py_3_12))]
fn set_profile(
    ts: *mut py::PyThreadState,
    func: Option<py::Py_tracefunc>,
    obj: *mut py::PyObject,
) -> c_int {
    // SAFETY: GIL held, `ts` a live thread state of this interpreter.
    unsafe { ffi::_PyEval_SetProfile(ts, func, obj) }
}

/// Builds for 3.12+ run evidence-only mode on `sys.monitoring`; this one is never installed.
#[cfg(Py_3_12)]
fn set_profile(
    _ts: *mut py::PyThreadState,
    _func: Option<py::Py_tracefunc>,
    _obj: *mut py::PyObject,
) -> c_int {
    0
}

/// `threading.setprofile` target: runs at the first profile event of each new thread (or
/// after the program hands the saved profile function back), swaps the C hook in and
/// forwards the event.
#[pyfunction]
#[pyo3(name = "_profile_bootstrap")]
pub fn profile_bootstrap(
    py: Python<'_>,
    frame: &Bound<'_, PyFrame>,
    event: &str,
    _arg: &Bound<'_, PyAny>,
) -> PyResult<PyObject> {
    // try_lock: never wait for the state lock while holding the GIL (see tracer docs).
    match super::RECORDER.try_lock(py) {
        Some(g) if g.as_ref().is_some_and(|r| !r.disabled) => {}
        _ => return Ok(py.None()),
    }
    let hook = hook_object(py)?;
    unsafe { py::PyEval_SetProfile(Some(profile_hook), hook.as_ptr()) };
    let what = match event {
        "call" => py::PyTrace_CALL,
        "return" => py::PyTrace_RETURN,
        _ => return Ok(py.None()),
    };
    let arg = std::ptr::null_mut();
    if unsafe { profile_hook(std::ptr::null_mut(), frame.as_ptr().cast(), what, arg) } != 0 {
        return Err(PyErr::fetch(py));
    }
    Ok(py.None())
}
