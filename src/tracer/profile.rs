//! The CPython 3.11 back end of evidence-only mode (`--evidence-only`): a C profile hook
//! (`PyEval_SetProfile`) on every thread, instead of the trace function.
//!
//! Evidence needs one thing per code object: its first sight, with the globals of the frame
//! that runs it. A profile hook gets call and return events only (no line events, and a
//! 3.11 profile function costs what a no-op one does: the interpreter's tracing dispatch,
//! see docs/performance.md); [`profile_hook`] returns at once for every event but a call,
//! and for a call does one cache lookup of the frame's code object. A code object seen for
//! the first time is named, filtered and compared by the shared [`Recorder`], which records
//! nothing: the session has no trace.
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

use std::os::raw::c_int;
use std::sync::atomic::{AtomicUsize, Ordering};

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
/// # Safety
/// Called by CPython with the GIL held and a valid `frame`.
pub unsafe extern "C" fn profile_hook(
    _obj: *mut py::PyObject,
    frame: *mut py::PyFrameObject,
    what: c_int,
    _arg: *mut py::PyObject,
) -> c_int {
    if what != py::PyTrace_CALL {
        if what == py::PyTrace_RETURN && ENTRY_FRAME.load(Ordering::Relaxed) == frame as usize {
            ENTRY_FRAME.store(0, Ordering::Relaxed);
            let _ = run_hook(|_py, rec| {
                settrace::restore_entry_frame(rec, frame);
                Ok(())
            });
        }
        return 0;
    }
    match run_hook(|py, rec| first_sight(py, rec, frame)) {
        Hook::Done(()) | Hook::Idle => 0,
        Hook::Raise => -1,
    }
}

/// A call: registers (names, filters, compares) the frame's code object if it is new.
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
    if owned {
        unsafe { py::Py_DECREF(code) };
    }
    if let Ok((_, true)) = result {
        // Threads are counted where code is first seen (no per-call thread bookkeeping).
        rec.current_thread();
    }
    result.map(|_| ())
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
    match super::RECORDER.try_lock() {
        Ok(g) if g.as_ref().is_some_and(|r| !r.disabled) => {}
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
