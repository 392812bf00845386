//! Installing and removing the trace hook on every thread.
//!
//! CPython 3.11 has no public "set the trace function of all threads" call (3.12 adds
//! `PyEval_SetTraceAllThreads`). The recorder does what that function does: walk the
//! interpreter's thread states with the GIL held and set each one's trace function with
//! `_PyEval_SetTrace`. Threads started later through `threading` pick the hook up from
//! `threading.settrace`: their first Python-level trace call lands in
//! [`thread_bootstrap`], which swaps in the C hook and forwards that first event.
//!
//! Not covered: threads started with `_thread.start_new_thread` directly (they never
//! consult `threading.settrace`), and code that replaces the trace function itself with
//! `sys.settrace` (a debugger or coverage tool running inside the traced program).

use pyo3::ffi as py;
use pyo3::prelude::*;
use pyo3::types::PyFrame;

use super::{ffi, trace_hook};

/// Sets the hook on every existing thread state and on threads started later.
pub fn install_all(py: Python<'_>) -> PyResult<()> {
    // `threading.settrace` first: it is Python code, and must not be recorded.
    let bootstrap = wrap_pyfunction!(thread_bootstrap, py)?;
    py.import("threading")?
        .call_method1("settrace", (bootstrap,))?;
    for_each_thread_state(|ts| unsafe {
        ffi::_PyEval_SetTrace(ts, Some(trace_hook), std::ptr::null_mut());
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
        Ok(g) if g.is_some() => {}
        _ => return Ok(py.None()),
    }
    unsafe { py::PyEval_SetTrace(Some(trace_hook), std::ptr::null_mut()) };
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
