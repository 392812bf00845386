//! The CPython 3.12+ back end: `sys.monitoring` (PEP 669) with C-level callbacks.
//!
//! Each callback is a builtin function object over a `METH_FASTCALL` C function (no Python
//! code, no argument tuple) that translates its event into the shared [`Recorder`] calls.
//! Monitoring is per interpreter, so every thread is recorded, `_thread.start_new_thread`
//! threads included, and the program's own `sys.settrace` / `sys.setprofile` (which CPython
//! runs as tools 6 and 7) coexist with the recorder.
//!
//! Events:
//! - global (every code object): `PY_START` (a frame starts: first sight of a code object,
//!   and calls), `PY_THROW`, `PY_UNWIND` and `RAISE` (PEP 669 cannot switch these on per code);
//! - local, switched on per code object at its first sight and only for code that is
//!   recorded: `PY_RESUME`, `PY_RETURN`, `PY_YIELD`, `LINE`.
//!
//! Code the recorder does not record (its own, synthetic files, code the filters skip) gets
//! no local events at all, and its `PY_START` returns `DISABLE`: after its first start it
//! costs no callback. Any local event that still reaches such code (after another tool's
//! `sys.monitoring.restart_events()`, say) returns `DISABLE` again; the non-local events
//! cannot be disabled, and cost a cache lookup when an exception passes through.
//!
//! Stack entries are keyed by code object (callbacks get no frame); a frame is only
//! materialised (`PyEval_GetFrame`) to read a fresh frame's arguments (`PyFrame_GetVar`).
//!
//! Evidence-only mode (`--evidence-only`, no trace): only `PY_START` is switched on. A code
//! object's first start is its first sight (named, filtered, compared) and returns
//! `DISABLE`, so each code object costs one callback for the whole run, whatever the filters
//! decide. The program's entry code also gets `PY_RETURN`, and `PY_UNWIND` runs a callback
//! that only restores the entry frame's link (no state lock, no lookup), so the program's
//! stack looks as under python; nothing else is registered.
//!
//! Tool id: the recorder prefers id 4, then 3, then 5 — ids CPython leaves unnamed or that
//! no standard-library tool claims — and never takes `DEBUGGER_ID` (0), `COVERAGE_ID` (1) or
//! `PROFILER_ID` (2), so a debugger, coverage.py or cProfile started by the program still gets
//! its own id. When 3, 4 and 5 are all held, recording does not start: a clear error names
//! the tools that hold them.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU64, Ordering};

use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi as py;
use pyo3::prelude::*;

use super::{run_hook, Hook, Recorder};

/// The tool ids the recorder may claim, preferred first (see the module docs).
pub const TOOL_IDS: [u8; 3] = [4, 3, 5];
/// The name the recorder's tool id is claimed under (`sys.monitoring.get_tool`).
pub const TOOL_NAME: &str = "ct-recorder";

/// The claimed tool id while installed, else -1.
static TOOL: AtomicI32 = AtomicI32::new(-1);
/// `sys.monitoring.DISABLE` (a strong reference while installed).
static DISABLE: AtomicPtr<py::PyObject> = AtomicPtr::new(std::ptr::null_mut());
/// `sys.monitoring.set_local_events` (a strong reference while installed).
static SET_LOCAL_EVENTS: AtomicPtr<py::PyObject> = AtomicPtr::new(std::ptr::null_mut());
/// The local event set switched on for recorded code (an `int`, strong reference).
static LOCAL_EVENTS: AtomicPtr<py::PyObject> = AtomicPtr::new(std::ptr::null_mut());
/// While the program's entry frame runs: the shim frame's `previous` slot and the link it
/// held (see [`cut_entry_frame`]).
static ENTRY_SLOT: AtomicPtr<*mut std::ffi::c_void> = AtomicPtr::new(std::ptr::null_mut());
static ENTRY_SAVED: AtomicPtr<std::ffi::c_void> = AtomicPtr::new(std::ptr::null_mut());
/// The entry code object while its frame's link is cut.
static ENTRY_CUT_CODE: AtomicPtr<py::PyObject> = AtomicPtr::new(std::ptr::null_mut());
/// A session ran before in this process: its `DISABLE`d locations must be re-enabled.
static INSTALLED_BEFORE: AtomicBool = AtomicBool::new(false);
/// Callbacks that do not go through [`run_hook`] (evidence-only mode: this back end's
/// `PY_UNWIND`, and on 3.11 the profile hook's calls of code already seen, see
/// [`super::profile`]), counted so that `summary.counts.callbacks` stays the number of
/// callbacks the recorder received. Reset when either back end installs.
pub static LIGHT_CALLBACKS: AtomicU64 = AtomicU64::new(0);

/// The events an evidence-only session registers (see the module docs).
const EVIDENCE_EVENTS: [&str; 3] = ["PY_START", "PY_RETURN", "PY_UNWIND"];

type Callback = unsafe extern "C" fn(
    *mut py::PyObject,
    *mut *mut py::PyObject,
    py::Py_ssize_t,
) -> *mut py::PyObject;

/// (event name in `sys.monitoring.events`, callback, local event).
const CALLBACKS: [(&str, Callback, bool); 8] = [
    ("PY_START", py_start, false),
    ("PY_RESUME", py_resume, true),
    ("PY_RETURN", py_return, true),
    ("PY_YIELD", py_yield, true),
    ("LINE", line, true),
    ("PY_THROW", py_throw, false),
    ("PY_UNWIND", py_unwind, false),
    ("RAISE", raise, false),
];

// ---- the hot path -------------------------------------------------------------------------

/// The code index of `code`; recorded code seen for the first time gets its local events.
#[inline]
fn lookup(py: Python<'_>, rec: &mut Recorder, code: *mut py::PyObject) -> Result<u32, String> {
    rec.current_thread();
    let (idx, new) = rec.code_idx(py, code, || {
        // SAFETY: GIL held; borrowed globals of the frame the event fires in.
        let globals = unsafe { py::PyEval_GetGlobals() };
        (!globals.is_null()).then(|| unsafe { Bound::from_borrowed_ptr(py, globals) })
    })?;
    if new && rec.is_recorded(idx) {
        enable_local_events(py, code)?;
    }
    Ok(idx)
}

/// `PY_START` after the size cap, with naming going on ([`Recorder::capped`]): the code is
/// named at first sight (shadow comparison, metrics), no local events are switched on, and
/// `DISABLE` ends this code's `PY_START` callbacks: one callback per code object, as in
/// evidence-only mode.
fn name_after_cap(
    py: Python<'_>,
    rec: &mut Recorder,
    code: *mut py::PyObject,
) -> Result<bool, String> {
    rec.code_idx(py, code, || {
        // SAFETY: GIL held; borrowed globals of the frame the event fires in.
        let globals = unsafe { py::PyEval_GetGlobals() };
        (!globals.is_null()).then(|| unsafe { Bound::from_borrowed_ptr(py, globals) })
    })?;
    Ok(true)
}

/// Replies `DISABLE` (`true`) or `None`, or NULL with the recorder's error set.
#[inline]
unsafe fn reply(hook: Hook<bool>) -> *mut py::PyObject {
    match hook {
        Hook::Done(true) => {
            let disable = DISABLE.load(Ordering::Relaxed);
            if disable.is_null() {
                return none();
            }
            py::Py_INCREF(disable);
            disable
        }
        Hook::Done(false) | Hook::Idle => none(),
        Hook::Raise => std::ptr::null_mut(),
    }
}

#[inline]
unsafe fn none() -> *mut py::PyObject {
    let none = py::Py_None();
    py::Py_INCREF(none);
    none
}

/// `PY_START(code, offset)`: a fresh frame.
unsafe extern "C" fn py_start(
    _slf: *mut py::PyObject,
    args: *mut *mut py::PyObject,
    _nargs: py::Py_ssize_t,
) -> *mut py::PyObject {
    let code = *args;
    reply(run_hook(|py, rec| {
        if rec.capped {
            return name_after_cap(py, rec, code);
        }
        let idx = lookup(py, rec, code)?;
        if cut_entry_frame(code) && !rec.is_recorded(idx) {
            // Unrecorded entry code (runpy's, for -m): its return must still come, to
            // restore the link.
            enable_local_events(py, code)?;
        }
        if !rec.is_recorded(idx) {
            return Ok(true);
        }
        rec.enter(py, code as usize, idx, true, || unsafe {
            py::PyEval_GetFrame()
        });
        Ok(false)
    }))
}

/// `PY_RESUME(code, offset)`: a generator or coroutine resumes.
unsafe extern "C" fn py_resume(
    _slf: *mut py::PyObject,
    args: *mut *mut py::PyObject,
    _nargs: py::Py_ssize_t,
) -> *mut py::PyObject {
    let code = *args;
    reply(run_hook(|py, rec| {
        if rec.capped {
            return Ok(true);
        }
        let idx = lookup(py, rec, code)?;
        if !rec.is_recorded(idx) {
            return Ok(true);
        }
        rec.enter(py, code as usize, idx, false, std::ptr::null_mut);
        Ok(false)
    }))
}

/// `PY_THROW(code, offset, exception)`: a generator resumes with `throw()` (not disableable).
unsafe extern "C" fn py_throw(
    _slf: *mut py::PyObject,
    args: *mut *mut py::PyObject,
    _nargs: py::Py_ssize_t,
) -> *mut py::PyObject {
    let code = *args;
    reply(run_hook(|py, rec| {
        if rec.capped {
            return Ok(false);
        }
        let idx = lookup(py, rec, code)?;
        if rec.is_recorded(idx) {
            rec.enter(py, code as usize, idx, false, std::ptr::null_mut);
        }
        Ok(false)
    }))
}

/// `PY_RETURN(code, offset, value)`.
unsafe extern "C" fn py_return(
    _slf: *mut py::PyObject,
    args: *mut *mut py::PyObject,
    _nargs: py::Py_ssize_t,
) -> *mut py::PyObject {
    let (code, value) = (*args, *args.add(2));
    reply(run_hook(|py, rec| {
        restore_entry_frame(code);
        if rec.capped {
            return Ok(true);
        }
        let idx = lookup(py, rec, code)?;
        if !rec.is_recorded(idx) {
            return Ok(true);
        }
        rec.leave(py, code as usize, Some(value));
        Ok(false)
    }))
}

/// `PY_YIELD(code, offset, value)`: the frame suspends; a return on the thread's stack.
unsafe extern "C" fn py_yield(
    slf: *mut py::PyObject,
    args: *mut *mut py::PyObject,
    nargs: py::Py_ssize_t,
) -> *mut py::PyObject {
    py_return(slf, args, nargs)
}

/// `PY_UNWIND(code, offset, exception)`: the frame exits with an exception (not disableable).
unsafe extern "C" fn py_unwind(
    _slf: *mut py::PyObject,
    args: *mut *mut py::PyObject,
    _nargs: py::Py_ssize_t,
) -> *mut py::PyObject {
    let code = *args;
    reply(run_hook(|py, rec| {
        restore_entry_frame(code);
        if rec.capped {
            return Ok(false);
        }
        let idx = lookup(py, rec, code)?;
        if rec.is_recorded(idx) {
            rec.leave(py, code as usize, None);
        }
        Ok(false)
    }))
}

/// Evidence-only `PY_UNWIND(code, offset, exception)`: restores the entry frame's link when
/// the entry frame is unwound; nothing else (no state lock, no lookup).
unsafe extern "C" fn evidence_unwind(
    _slf: *mut py::PyObject,
    args: *mut *mut py::PyObject,
    _nargs: py::Py_ssize_t,
) -> *mut py::PyObject {
    LIGHT_CALLBACKS.fetch_add(1, Ordering::Relaxed);
    restore_entry_frame(*args);
    none()
}

/// `LINE(code, line_number)`.
unsafe extern "C" fn line(
    _slf: *mut py::PyObject,
    args: *mut *mut py::PyObject,
    _nargs: py::Py_ssize_t,
) -> *mut py::PyObject {
    let (code, lineno) = (*args, *args.add(1));
    reply(run_hook(|py, rec| {
        if rec.capped {
            return Ok(true);
        }
        rec.current_thread();
        let idx = match rec.top_code(code as usize) {
            Some(idx) => idx,
            None => lookup(py, rec, code)?,
        };
        if !rec.is_recorded(idx) {
            return Ok(true);
        }
        let n = unsafe { py::PyLong_AsLong(lineno) };
        if n == -1 && unsafe { !py::PyErr_Occurred().is_null() } {
            unsafe { py::PyErr_Clear() };
            return Ok(false);
        }
        rec.line(idx, n as i64);
        Ok(false)
    }))
}

/// `RAISE(code, offset, exception)`: raised in, or propagating into, a frame of `code`.
unsafe extern "C" fn raise(
    _slf: *mut py::PyObject,
    args: *mut *mut py::PyObject,
    _nargs: py::Py_ssize_t,
) -> *mut py::PyObject {
    let (code, exc) = (*args, *args.add(2));
    reply(run_hook(|py, rec| {
        if rec.capped {
            return Ok(false);
        }
        let idx = lookup(py, rec, code)?;
        rec.exception(py, idx, exc);
        Ok(false)
    }))
}

/// The program's first frame is started from C (`exec`, or the recorder for `-m`): on 3.12+
/// CPython puts a shim frame below it whose `previous` link leads to the launcher's frames.
/// While the program runs that link is cleared, so `inspect.stack()`, `sys._getframe()` and
/// `warnings` see the program's frames only, as under python; it is restored when the entry
/// frame returns or unwinds (3.13 leaves the interpreter through that link), and at
/// uninstall. The entry code gets `PY_RETURN` even when it is not recorded, and the link is
/// only cut when the frame layout checks out ([`ffi::shim_link_312`]).
fn cut_entry_frame(code: *mut py::PyObject) -> bool {
    let entry = super::ENTRY_CODE.load(Ordering::Relaxed);
    if entry == 0 || entry != code as usize {
        return false;
    }
    super::ENTRY_CODE.store(0, Ordering::Relaxed);
    // SAFETY: GIL held, inside the PY_START callback of `code`: the current frame is the
    // fresh frame of `code`. New references are released here.
    unsafe {
        let frame = py::PyEval_GetFrame();
        if frame.is_null() {
            return false;
        }
        let back = py::PyFrame_GetBack(frame);
        if back.is_null() {
            return false;
        }
        let back_code = py::PyFrame_GetCode(back) as *mut py::PyObject;
        let slot = super::ffi::shim_link_312(frame, code, back_code);
        py::Py_DECREF(back_code);
        py::Py_DECREF(back.cast());
        let Some(slot) = slot else {
            tracing::debug!("entry frame layout not as expected: launcher frames stay visible");
            return false;
        };
        ENTRY_SAVED.store(*slot, Ordering::Relaxed);
        ENTRY_SLOT.store(slot, Ordering::Relaxed);
        ENTRY_CUT_CODE.store(code, Ordering::Relaxed);
        *slot = std::ptr::null_mut();
    }
    true
}

/// Restores the link [`cut_entry_frame`] cleared, when `code` is the entry code (or always,
/// with a null `code`).
fn restore_entry_frame(code: *mut py::PyObject) {
    let cut = ENTRY_CUT_CODE.load(Ordering::Relaxed);
    if cut.is_null() || (!code.is_null() && cut != code) {
        return;
    }
    let slot = ENTRY_SLOT.swap(std::ptr::null_mut(), Ordering::Relaxed);
    ENTRY_CUT_CODE.store(std::ptr::null_mut(), Ordering::Relaxed);
    if !slot.is_null() {
        // SAFETY: the shim frame lives on the C stack until the entry frame has returned,
        // and this runs before it does (its PY_RETURN / PY_UNWIND, or uninstall meanwhile).
        unsafe { *slot = ENTRY_SAVED.load(Ordering::Relaxed) };
    }
}

/// `sys.monitoring.set_local_events(tool, code, LOCAL_EVENTS)`.
fn enable_local_events(py: Python<'_>, code: *mut py::PyObject) -> Result<(), String> {
    let (func, events) = (
        SET_LOCAL_EVENTS.load(Ordering::Relaxed),
        LOCAL_EVENTS.load(Ordering::Relaxed),
    );
    let tool = TOOL.load(Ordering::Relaxed);
    if func.is_null() || events.is_null() || tool < 0 {
        return Ok(());
    }
    // SAFETY: GIL held; `func` and `events` are kept alive while installed.
    unsafe {
        let func = Bound::from_borrowed_ptr(py, func);
        let events = Bound::from_borrowed_ptr(py, events);
        let code = Bound::from_borrowed_ptr(py, code);
        func.call1((tool, code, events))
            .map_err(|e| format!("sys.monitoring.set_local_events: {e}"))?;
    }
    Ok(())
}

// ---- installing ---------------------------------------------------------------------------

/// `PyMethodDef`s live for the process (CPython keeps a pointer in each function object).
struct Defs([py::PyMethodDef; 8]);
// SAFETY: the definitions are immutable after construction and only read by CPython.
unsafe impl Sync for Defs {}
// SAFETY: as above; the pointers are to static strings and functions.
unsafe impl Send for Defs {}

static DEFS: std::sync::OnceLock<Defs> = std::sync::OnceLock::new();
static EVIDENCE_UNWIND_DEF: std::sync::OnceLock<Defs1> = std::sync::OnceLock::new();

/// One `PyMethodDef` (see [`Defs`]).
struct Defs1(py::PyMethodDef);
// SAFETY: as for `Defs`.
unsafe impl Sync for Defs1 {}
// SAFETY: as for `Defs`.
unsafe impl Send for Defs1 {}

fn evidence_unwind_def() -> &'static Defs1 {
    EVIDENCE_UNWIND_DEF.get_or_init(|| {
        Defs1(py::PyMethodDef {
            ml_name: c"ct_recorder_monitoring_callback".as_ptr(),
            ml_meth: py::PyMethodDefPointer {
                PyCFunctionFast: evidence_unwind,
            },
            ml_flags: py::METH_FASTCALL,
            ml_doc: std::ptr::null(),
        })
    })
}

fn defs() -> &'static Defs {
    DEFS.get_or_init(|| {
        Defs(CALLBACKS.map(|(_, callback, _)| py::PyMethodDef {
            ml_name: c"ct_recorder_monitoring_callback".as_ptr(),
            ml_meth: py::PyMethodDefPointer {
                PyCFunctionFast: callback,
            },
            ml_flags: py::METH_FASTCALL,
            ml_doc: std::ptr::null(),
        }))
    })
}

/// Claims a tool id, registers the callbacks and switches the global events on
/// (`evidence_only`: only those of [`EVIDENCE_EVENTS`], see the module docs).
pub fn install(py: Python<'_>, evidence_only: bool) -> PyResult<()> {
    let mon = py.import("sys")?.getattr("monitoring")?;
    let mut holders = Vec::new();
    let mut tool = None;
    for id in TOOL_IDS {
        let holder = mon.call_method1("get_tool", (id,))?;
        if holder.is_none() {
            mon.call_method1("use_tool_id", (id, TOOL_NAME))?;
            tool = Some(id);
            break;
        }
        holders.push(format!("{id} ({})", holder.str()?));
    }
    let Some(tool) = tool else {
        return Err(crate::ConfigError::new_err(format!(
            "cannot record: every sys.monitoring tool id the recorder may use is held: {}",
            holders.join(", ")
        )));
    };
    if INSTALLED_BEFORE.swap(true, Ordering::Relaxed) {
        // An earlier session in this process DISABLEd locations for this tool id.
        mon.call_method0("restart_events")?;
    }
    let events = mon.getattr("events")?;
    let (mut global, mut local) = (0u32, 0u32);
    LIGHT_CALLBACKS.store(0, Ordering::Relaxed);
    for (i, (name, _, is_local)) in CALLBACKS.iter().enumerate() {
        if evidence_only && !EVIDENCE_EVENTS.contains(name) {
            continue;
        }
        let event: u32 = events.getattr(*name)?.extract()?;
        let def = if evidence_only && *name == "PY_UNWIND" {
            &evidence_unwind_def().0
        } else {
            &defs().0[i]
        };
        let def = def as *const py::PyMethodDef as *mut py::PyMethodDef;
        // SAFETY: GIL held; `def` lives for the process.
        let func = unsafe {
            Bound::from_owned_ptr_or_err(
                py,
                py::PyCFunction_NewEx(def, std::ptr::null_mut(), std::ptr::null_mut()),
            )?
        };
        mon.call_method1("register_callback", (tool, event, func))?;
        if *is_local {
            local |= event;
        } else {
            global |= event;
        }
    }
    let keep = |slot: &AtomicPtr<py::PyObject>, obj: Bound<'_, PyAny>| {
        let old = slot.swap(obj.into_ptr(), Ordering::Relaxed);
        if !old.is_null() {
            unsafe { py::Py_DECREF(old) };
        }
    };
    keep(&DISABLE, mon.getattr("DISABLE")?);
    keep(&SET_LOCAL_EVENTS, mon.getattr("set_local_events")?);
    keep(&LOCAL_EVENTS, local.into_pyobject(py)?.into_any());
    TOOL.store(i32::from(tool), Ordering::Relaxed);
    if let Err(e) = adopt_running_frames(py) {
        uninstall(py);
        return Err(PyRuntimeError::new_err(e));
    }
    if let Err(e) = mon.call_method1("set_events", (tool, global)) {
        uninstall(py);
        return Err(PyRuntimeError::new_err(format!(
            "sys.monitoring.set_events: {e}"
        )));
    }
    Ok(())
}

/// Frames already running when recording starts (the body of a `with recording():` block,
/// every other thread's stack) get no `PY_START`: their recorded code gets its local events
/// now, so their next lines are recorded as on 3.11. Their returns, whose calls were never
/// recorded, are ignored by the shared stack logic.
fn adopt_running_frames(py: Python<'_>) -> Result<(), String> {
    let Some(mut guard) = super::RECORDER.try_lock(py) else {
        return Ok(());
    };
    let Some(rec) = guard.as_mut() else {
        return Ok(());
    };
    // SAFETY: GIL held; thread states and frames stay alive while we hold it, and every
    // new reference taken below is released.
    unsafe {
        let interp = py::PyInterpreterState_Get();
        let mut ts = py::PyInterpreterState_ThreadHead(interp);
        while !ts.is_null() {
            let mut frame = py::PyThreadState_GetFrame(ts);
            while !frame.is_null() {
                let code = py::PyFrame_GetCode(frame) as *mut py::PyObject;
                let found = rec.code_idx(py, code, || {
                    let globals = super::ffi::PyFrame_GetGlobals(frame);
                    (!globals.is_null()).then(|| Bound::from_owned_ptr(py, globals))
                });
                let result = match found {
                    Ok((idx, true)) if rec.is_recorded(idx) => enable_local_events(py, code),
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                };
                py::Py_DECREF(code);
                let back = py::PyFrame_GetBack(frame);
                py::Py_DECREF(frame.cast());
                frame = back;
                if let Err(e) = result {
                    if !frame.is_null() {
                        py::Py_DECREF(frame.cast());
                    }
                    return Err(e);
                }
            }
            ts = py::PyThreadState_Next(ts);
        }
    }
    Ok(())
}

/// Switches every event off, unregisters the callbacks and frees the tool id. Never fails:
/// errors are cleared.
pub fn uninstall(py: Python<'_>) {
    restore_entry_frame(std::ptr::null_mut());
    let tool = TOOL.swap(-1, Ordering::Relaxed);
    if tool < 0 {
        return;
    }
    let _ = (|| -> PyResult<()> {
        let mon = py.import("sys")?.getattr("monitoring")?;
        mon.call_method1("set_events", (tool, 0))?;
        // Local events stay on code objects after the tool is freed (3.12): switch them off.
        if let Some(guard) = super::RECORDER.try_lock(py) {
            if let Some(rec) = guard.as_ref() {
                for code in rec.recorded_codes() {
                    let _ = mon.call_method1("set_local_events", (tool, code.bind(py), 0));
                }
            }
        }
        let events = mon.getattr("events")?;
        for (name, _, _) in CALLBACKS {
            let event = events.getattr(name)?;
            mon.call_method1("register_callback", (tool, event, py.None()))?;
        }
        if mon.hasattr("clear_tool_id")? {
            mon.call_method1("clear_tool_id", (tool,))?;
        }
        mon.call_method1("free_tool_id", (tool,))?;
        Ok(())
    })();
    for slot in [&DISABLE, &SET_LOCAL_EVENTS, &LOCAL_EVENTS] {
        let old = slot.swap(std::ptr::null_mut(), Ordering::Relaxed);
        if !old.is_null() {
            unsafe { py::Py_DECREF(old) };
        }
    }
    unsafe {
        if !py::PyErr_Occurred().is_null() {
            py::PyErr_Clear();
        }
    }
}
