//! Installing and removing the trace hook on every thread.
//!
//! CPython 3.11 has no public "set the trace function of all threads" call (3.12 adds
//! `PyEval_SetTraceAllThreads`). The recorder does what that function does: walk the
//! interpreter's thread states with the GIL held and set each one's trace function with
//! `_PyEval_SetTrace`. Threads started later through `threading` pick the hook up from
//! `threading.settrace`: their first Python-level trace call lands in
//! [`thread_bootstrap`], which swaps in the C hook and forwards that first event.
//!
//! The C hook is installed with a Python object, [`hook_object`] (that same bootstrap
//! function), as its trace object, so `sys.gettrace()` returns it, as it returns any other
//! trace function. A program that saves it and hands it back
//! (`old = sys.gettrace(); sys.settrace(f); ...; sys.settrace(old)`) gets the recorder back:
//! CPython calls `old` for the next call event, and the bootstrap swaps the C hook in again.
//! Events while another trace function was installed are not recorded; each such gap, and
//! each thread still without the hook at stop, is listed in `trace_metadata.json`
//! (`summary.recording_gaps`) with one warning on stderr.
//!
//! Not covered: threads started with `_thread.start_new_thread` directly (they never
//! consult `threading.settrace`).

use pyo3::ffi as py;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::PyFrame;

use super::{ffi, trace_hook};

static HOOK: GILOnceCell<PyObject> = GILOnceCell::new();

/// The trace object installed with the C hook (what `sys.gettrace()` returns while
/// recording), and `threading.settrace`'s function: [`thread_bootstrap`].
pub fn hook_object(py: Python<'_>) -> PyResult<&PyObject> {
    HOOK.get_or_try_init(py, || {
        Ok(wrap_pyfunction!(thread_bootstrap, py)?.into_any().unbind())
    })
}

/// A stretch of a thread that was not recorded because another trace function replaced
/// the recorder's (`sys.settrace`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct RecordingGap {
    /// The thread's id in the trace (CPython's thread-state id; 1 is the main thread).
    pub thread: u64,
    /// `resumed`: the recorder's hook was handed back and recording went on from `at`;
    /// `lost`: at the end of recording the thread still had another trace function (or
    /// none), its current position was `at`.
    pub state: &'static str,
    /// Resumed: `file:line` where recording went on. Lost: the innermost recorded function
    /// the thread was in when the recorder last saw it (`name (file:line)`), or `?`.
    pub at: String,
    pub why: &'static str,
}

const REPLACED: &str = "sys.settrace replaced the recorder's trace function on this thread; \
                        events while it was replaced were not recorded";

/// Sets the hook on every existing thread state and on threads started later.
pub fn install_all(py: Python<'_>) -> PyResult<()> {
    // `threading.settrace` first: it is Python code, and must not be recorded.
    let hook = hook_object(py)?.clone_ref(py);
    py.import("threading")?.call_method1("settrace", (&hook,))?;
    for_each_thread_state(|ts| unsafe {
        ffi::_PyEval_SetTrace(ts, Some(trace_hook), hook.as_ptr());
    });
    if unsafe { !py::PyErr_Occurred().is_null() } {
        return Err(PyErr::fetch(py));
    }
    Ok(())
}

/// Removes the hook from every thread. Never fails: errors are cleared.
pub fn uninstall_all(py: Python<'_>) {
    for_each_thread_state(|ts| unsafe {
        if ffi::_PyEval_SetTrace(ts, None, std::ptr::null_mut()) != 0 {
            py::PyErr_Clear();
        }
    });
    if let Ok(threading) = py.import("threading") {
        let _ = threading.call_method1("settrace", (py.None(),));
    }
    unsafe {
        if !py::PyErr_Occurred().is_null() {
            py::PyErr_Clear();
        }
    }
}

fn for_each_thread_state(mut f: impl FnMut(*mut py::PyThreadState)) {
    // SAFETY: the caller holds the GIL; thread states are only created and destroyed by
    // threads that hold it (CPython 3.11 keeps the list consistent under the GIL for the
    // threads we can see).
    unsafe {
        let interp = py::PyInterpreterState_Get();
        let mut ts = py::PyInterpreterState_ThreadHead(interp);
        while !ts.is_null() {
            f(ts);
            ts = py::PyThreadState_Next(ts);
        }
    }
}

/// `threading.settrace` target: runs once at the start of each new thread.
#[pyfunction]
#[pyo3(name = "_thread_bootstrap")]
pub fn thread_bootstrap(
    py: Python<'_>,
    frame: &Bound<'_, PyFrame>,
    event: &str,
    arg: &Bound<'_, PyAny>,
) -> PyResult<PyObject> {
    // try_lock: never wait for the state lock while holding the GIL (see tracer docs).
    match super::RECORDER.try_lock() {
        Ok(mut g) if g.is_some() => {
            if let Some(rec) = g.as_mut() {
                // A thread the recorder has seen before gets its hook back: a gap ends here.
                let tid = unsafe { ffi::PyThreadState_GetID(py::PyThreadState_Get()) };
                if rec.has_seen_thread(tid) && !rec.disabled {
                    rec.note_gap(RecordingGap {
                        thread: tid,
                        state: "resumed",
                        at: frame_position(frame),
                        why: REPLACED,
                    });
                }
            }
        }
        _ => return Ok(py.None()),
    }
    let hook = hook_object(py)?;
    unsafe { py::PyEval_SetTrace(Some(trace_hook), hook.as_ptr()) };
    let what = match event {
        "call" => py::PyTrace_CALL,
        "line" => py::PyTrace_LINE,
        "return" => py::PyTrace_RETURN,
        "exception" => py::PyTrace_EXCEPTION,
        _ => return Ok(py.None()),
    };
    let arg_ptr = if arg.is_none() && what == py::PyTrace_CALL {
        std::ptr::null_mut()
    } else {
        arg.as_ptr()
    };
    if unsafe { trace_hook(std::ptr::null_mut(), frame.as_ptr().cast(), what, arg_ptr) } != 0 {
        return Err(PyErr::fetch(py));
    }
    Ok(py.None())
}

/// `file:line` of a frame, for the gap notes.
fn frame_position(frame: &Bound<'_, PyFrame>) -> String {
    let file = frame
        .getattr("f_code")
        .and_then(|c| c.getattr("co_filename"))
        .and_then(|f| f.extract::<String>())
        .unwrap_or_else(|_| "?".into());
    let line = frame
        .getattr("f_lineno")
        .and_then(|l| l.extract::<i64>())
        .unwrap_or(0);
    format!("{file}:{line}")
}

/// Offsets of `c_tracefunc` / `c_traceobj` in CPython 3.11's `PyThreadState`
/// (Include/cpython/pystate.h: after `cframe` and `c_profilefunc`).
const C_TRACEFUNC: usize = 72;
const C_TRACEOBJ: usize = 88;

/// Threads that no longer have the recorder's hook, with where each one is now. Called at
/// stop, before the hook is removed. Empty when the thread-state layout does not check out
/// on the current thread (which has the hook, unless it lost it too: then nothing can be
/// told, and nothing is claimed).
pub fn threads_without_hook(py: Python<'_>) -> Vec<RecordingGap> {
    let Ok(hook) = hook_object(py) else {
        return Vec::new();
    };
    let ours = trace_hook as py::Py_tracefunc as usize;
    let read = |ts: *mut py::PyThreadState| unsafe {
        let base = ts as *const u8;
        (
            *(base.add(C_TRACEFUNC) as *const usize),
            *(base.add(C_TRACEOBJ) as *const usize),
        )
    };
    // The layout check: sys.gettrace() reads c_traceobj; it must agree with the offset.
    let current = unsafe { py::PyThreadState_Get() };
    let Ok(seen) = py.import("sys").and_then(|s| s.call_method0("gettrace")) else {
        return Vec::new();
    };
    let seen_ptr = if seen.is_none() {
        0
    } else {
        seen.as_ptr() as usize
    };
    if read(current).1 != seen_ptr {
        return Vec::new();
    }
    let mut lost = Vec::new();
    for_each_thread_state(|ts| {
        let (func, obj) = read(ts);
        if func != ours || obj != hook.as_ptr() as usize {
            lost.push(unsafe { ffi::PyThreadState_GetID(ts) });
        }
    });
    lost.into_iter()
        .map(|tid| RecordingGap {
            thread: tid,
            state: "lost",
            at: String::new(), // filled in by the caller from the recorder's stacks
            why: "another trace function (or none) was set with sys.settrace and the \
                  recorder's was not handed back; the thread was not recorded from then on",
        })
        .collect()
}
