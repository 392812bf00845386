//! The CPython 3.11 back end: one C trace function (`PyEval_SetTrace`) on every thread.
//!
//! [`trace_hook`] receives every call, line, return and exception event of every traced
//! thread and translates it into the shared [`Recorder`] calls. Stack entries are keyed by
//! frame address. A call event comes both when a frame starts and when a generator or
//! coroutine resumes; a fresh frame is told apart by its instruction offset (the code's
//! `RESUME 0`). Code the recorder does not record gets `f_trace_lines = False` on its frame,
//! so its lines cost no callback; its call and return events still arrive (3.11 has no way
//! to switch them off per code object).
//!
//! Installing: CPython 3.11 has no public "set the trace function of all threads" call (3.12
//! adds `PyEval_SetTraceAllThreads`). The recorder does what that function does: walk the
//! interpreter's thread states with the GIL held and set each one's trace function with
//! `_PyEval_SetTrace`. Threads started later through `threading` pick the hook up from
//! `threading.settrace`: their first Python-level trace call lands in [`thread_bootstrap`],
//! which swaps in the C hook and forwards that first event.
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
//! Not covered on 3.11: threads started with `_thread.start_new_thread` directly (they never
//! consult `threading.settrace`).

use std::os::raw::c_int;
use std::sync::atomic::Ordering;

use pyo3::ffi as py;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::PyFrame;

use super::{ffi, run_hook, Hook, Recorder, ENTRY_CODE};

/// The trace function installed on every traced thread.
///
/// # Safety
/// Called by CPython with the GIL held and valid `frame` / `arg` pointers.
pub unsafe extern "C" fn trace_hook(
    _obj: *mut py::PyObject,
    frame: *mut py::PyFrameObject,
    what: c_int,
    arg: *mut py::PyObject,
) -> c_int {
    match run_hook(|py, rec| handle_event(py, rec, frame, what, arg)) {
        Hook::Done(()) | Hook::Idle => 0,
        Hook::Raise => -1,
    }
}

fn handle_event(
    py: Python<'_>,
    rec: &mut Recorder,
    frame: *mut py::PyFrameObject,
    what: c_int,
    arg: *mut py::PyObject,
) -> Result<(), String> {
    if rec.capped {
        return after_size_cap(py, rec, frame, what);
    }
    rec.current_thread();
    let key = frame as usize;
    match what {
        py::PyTrace_CALL => {
            cut_entry_frame(rec, frame);
            let idx = code_of_frame(py, rec, frame)?;
            if !rec.is_recorded(idx) {
                // No line events for code we do not record: they would cost a callback each.
                no_line_events(frame);
            }
            // SAFETY: live frame, GIL held; the in-place read only after the layout check.
            let lasti = match rec.fast_locals {
                true => unsafe { ffi::frame_lasti_311(frame) },
                false => unsafe { ffi::PyFrame_GetLasti(frame) },
            };
            let fresh = lasti == rec.start_lasti(idx);
            rec.enter(py, key, idx, fresh, || frame);
        }
        py::PyTrace_LINE => {
            let idx = match rec.top_code(key) {
                Some(idx) => idx,
                None => code_of_frame(py, rec, frame)?,
            };
            // SAFETY: live frame; CPython sets f_lineno before a line event, so this is a
            // read (in place when the layout was checked at start).
            let mut line = match rec.fast_locals {
                true => unsafe { ffi::frame_lineno_311(frame) },
                false => 0,
            };
            if line == 0 {
                line = unsafe { py::PyFrame_GetLineNumber(frame) };
            }
            rec.line(idx, line as i64);
        }
        py::PyTrace_RETURN => {
            restore_entry_frame(rec, frame);
            // NULL: the frame is unwound by an exception.
            rec.leave(py, key, (!arg.is_null()).then_some(arg));
        }
        py::PyTrace_EXCEPTION => {
            let idx = match rec.top_code(key) {
                Some(idx) => idx,
                None => code_of_frame(py, rec, frame)?,
            };
            // `arg` is the (type, value, traceback) tuple.
            let value = unsafe {
                if arg.is_null() || py::PyTuple_Check(arg) == 0 || py::PyTuple_Size(arg) < 2 {
                    std::ptr::null_mut()
                } else {
                    py::PyTuple_GetItem(arg, 1)
                }
            };
            rec.exception(py, idx, value);
        }
        _ => {}
    }
    Ok(())
}

/// After the size cap, with naming going on ([`Recorder::capped`]): a call names the code at
/// first sight (shadow comparison, metrics) and switches the frame's line events off; nothing
/// is recorded. Returns still restore the entry frame's link.
fn after_size_cap(
    py: Python<'_>,
    rec: &mut Recorder,
    frame: *mut py::PyFrameObject,
    what: c_int,
) -> Result<(), String> {
    match what {
        py::PyTrace_CALL => {
            code_of_frame(py, rec, frame)?;
            no_line_events(frame);
        }
        py::PyTrace_RETURN => restore_entry_frame(rec, frame),
        _ => {}
    }
    Ok(())
}

/// `frame.f_trace_lines = False`: no line callbacks for this frame.
fn no_line_events(frame: *mut py::PyFrameObject) {
    // SAFETY: a live frame CPython passed to the hook, GIL held.
    unsafe {
        if py::PyObject_SetAttrString(frame.cast(), c"f_trace_lines".as_ptr(), py::Py_False()) != 0
        {
            py::PyErr_Clear();
        }
    }
}

/// The cache index of the frame's code, registered at first sight with the frame's globals.
fn code_of_frame(
    py: Python<'_>,
    rec: &mut Recorder,
    frame: *mut py::PyFrameObject,
) -> Result<u32, String> {
    let globals = || {
        // SAFETY: live frame; GetGlobals returns a new reference (or NULL).
        let globals = unsafe { ffi::PyFrame_GetGlobals(frame) };
        (!globals.is_null()).then(|| unsafe { Bound::from_owned_ptr(py, globals) })
    };
    if rec.fast_locals {
        // SAFETY: the frame layout was checked at start; the running frame keeps its code
        // alive for the whole callback, so a borrowed pointer is enough.
        let code = unsafe { ffi::frame_code_311(frame) };
        return rec.code_idx(py, code, globals).map(|(idx, _)| idx);
    }
    // SAFETY: `frame` is the live frame CPython passed to the hook; GetCode returns a new
    // reference that we release below.
    let code = unsafe { py::PyFrame_GetCode(frame) } as *mut py::PyObject;
    let result = rec.code_idx(py, code, globals);
    unsafe { py::Py_DECREF(code) };
    result.map(|(idx, _)| idx)
}

/// `python SCRIPT` runs the program's first frame at the bottom of the stack; under
/// ct-record the console script and launcher frames sit below it, visible to
/// `inspect.stack()`, `sys._getframe()`, `warnings` stack levels. The program's entry
/// frame is an *entry* frame (started from C by `exec`, or by the recorder for `-m`),
/// and CPython returns from an entry frame through the C call chain, not through its
/// `previous` link — so that link is cleared while the frame runs (restored at its
/// return), and the program sees its own frames only.
pub(crate) fn cut_entry_frame(rec: &mut Recorder, frame: *mut py::PyFrameObject) {
    let entry = ENTRY_CODE.load(Ordering::Relaxed);
    if entry == 0 || !rec.fast_locals {
        return;
    }
    let code = unsafe { py::PyFrame_GetCode(frame) } as usize;
    unsafe { py::Py_DECREF(code as *mut py::PyObject) };
    if code != entry {
        return;
    }
    ENTRY_CODE.store(0, Ordering::Relaxed);
    // SAFETY: 3.11 layout verified at start (fast_locals); the frame is live.
    let (link, is_entry) = unsafe { ffi::entry_link(frame) };
    if is_entry {
        let saved = unsafe { *link } as usize;
        unsafe { *link = std::ptr::null_mut() };
        rec.entry_cut = Some((frame as usize, saved));
    }
}

pub(crate) fn restore_entry_frame(rec: &mut Recorder, frame: *mut py::PyFrameObject) {
    if let Some((f, saved)) = rec.entry_cut {
        if f == frame as usize {
            let (link, _) = unsafe { ffi::entry_link(frame) };
            unsafe { *link = saved as *mut std::ffi::c_void };
            rec.entry_cut = None;
        }
    }
}

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
    for_each_thread_state(|ts| {
        set_trace(ts, Some(trace_hook), hook.as_ptr());
    });
    if unsafe { !py::PyErr_Occurred().is_null() } {
        return Err(PyErr::fetch(py));
    }
    Ok(())
}

/// Removes the hook from every thread. Never fails: errors are cleared.
pub fn uninstall_all(py: Python<'_>) {
    for_each_thread_state(|ts| {
        if set_trace(ts, None, std::ptr::null_mut()) != 0 {
            unsafe { py::PyErr_Clear() };
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

#[cfg(not(Py_3_12))]
fn set_trace(
    ts: *mut py::PyThreadState,
    func: Option<py::Py_tracefunc>,
    obj: *mut py::PyObject,
) -> c_int {
    // SAFETY: GIL held, `ts` a live thread state of this interpreter.
    unsafe { ffi::_PyEval_SetTrace(ts, func, obj) }
}

/// Builds for 3.12+ use the monitoring back end; this one is never installed there.
#[cfg(Py_3_12)]
fn set_trace(
    _ts: *mut py::PyThreadState,
    _func: Option<py::Py_tracefunc>,
    _obj: *mut py::PyObject,
) -> c_int {
    0
}

pub(crate) fn for_each_thread_state(mut f: impl FnMut(*mut py::PyThreadState)) {
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

/// The ids (as in the trace) of the threads alive now.
pub fn live_thread_ids() -> Vec<u64> {
    let mut ids = Vec::new();
    // SAFETY: GIL held by the caller (see `for_each_thread_state`).
    for_each_thread_state(|ts| ids.push(unsafe { ffi::PyThreadState_GetID(ts) }));
    ids
}

/// Why a thread that ended with recorded frames still open is a gap.
pub const ENDED_WITHOUT_HOOK: &str = "the thread ended with recorded calls whose returns never \
     came: another trace function (or none) was set with sys.settrace and the recorder's was \
     not handed back; the thread was not recorded from then on";

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
    match super::RECORDER.try_lock(py) {
        Some(mut g) if g.is_some() => {
            if let Some(rec) = g.as_mut() {
                // A thread the recorder has seen before gets its hook back: a gap ends here.
                let tid = unsafe { ffi::PyThreadState_GetID(py::PyThreadState_Get()) };
                if rec.has_seen_thread(tid) && !rec.disabled && !rec.capped {
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
#[cfg(not(Py_3_12))]
const C_TRACEFUNC: usize = 72;
#[cfg(not(Py_3_12))]
const C_TRACEOBJ: usize = 88;

/// Threads that no longer have the recorder's hook, with where each one is now. Called at
/// stop, before the hook is removed. Empty when the thread-state layout does not check out
/// on the current thread (which has the hook, unless it lost it too: then nothing can be
/// told, and nothing is claimed).
#[cfg(not(Py_3_12))]
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

/// Builds for 3.12+ use the monitoring back end, which the program's `sys.settrace` cannot
/// displace.
#[cfg(Py_3_12)]
pub fn threads_without_hook(_py: Python<'_>) -> Vec<RecordingGap> {
    Vec::new()
}
