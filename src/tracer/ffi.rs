//! CPython C-API functions that `pyo3-ffi` does not declare, and the few struct layouts the
//! recorder reads. All are exported by libpython (`nm -D libpython3.X.so`); the `Py*` ones are
//! public API. `_PyEval_SetTrace` (3.11 only: 3.13 no longer exports it) is the
//! per-thread-state setter that 3.12's public `PyEval_SetTraceAllThreads` is built on;
//! `PyFrame_GetVar` is new in 3.12. Symbols of one version only are declared for builds for
//! that version (pyo3's `Py_3_12` cfg), so no build references a symbol its libpython lacks.

use std::os::raw::c_int;

#[cfg(not(Py_3_12))]
use pyo3::ffi::Py_tracefunc;
use pyo3::ffi::{PyFrameObject, PyObject, PyThreadState};

extern "C" {
    pub fn PyFrame_GetLocals(frame: *mut PyFrameObject) -> *mut PyObject;
    pub fn PyFrame_GetGlobals(frame: *mut PyFrameObject) -> *mut PyObject;
    pub fn PyFrame_GetLasti(frame: *mut PyFrameObject) -> c_int;
    pub fn PyThreadState_GetID(tstate: *mut PyThreadState) -> u64;
    pub fn PyThread_get_thread_native_id() -> std::os::raw::c_ulong;
    static mut PyCell_Type: pyo3::ffi::PyTypeObject;
}

#[cfg(not(Py_3_12))]
extern "C" {
    pub fn _PyEval_SetTrace(
        tstate: *mut PyThreadState,
        func: Option<Py_tracefunc>,
        obj: *mut PyObject,
    ) -> c_int;
    /// The profile-function counterpart of `_PyEval_SetTrace` (evidence-only mode).
    pub fn _PyEval_SetProfile(
        tstate: *mut PyThreadState,
        func: Option<Py_tracefunc>,
        obj: *mut PyObject,
    ) -> c_int;
}

#[cfg(Py_3_12)]
extern "C" {
    pub fn PyFrame_GetVar(frame: *mut PyFrameObject, name: *mut PyObject) -> *mut PyObject;
}

/// `PyFrame_GetVar` does not exist before 3.12; the 3.11 back end never asks for it.
///
/// # Safety
/// Never unsafe to call: it only reports "no value".
#[cfg(not(Py_3_12))]
#[allow(non_snake_case)]
pub unsafe fn PyFrame_GetVar(_frame: *mut PyFrameObject, _name: *mut PyObject) -> *mut PyObject {
    std::ptr::null_mut()
}

/// The first fields of CPython 3.11's `PyFrameObject` (Include/internal/pycore_frame.h).
#[repr(C)]
struct FrameObject311 {
    ob_refcnt: isize,
    ob_type: *mut std::ffi::c_void,
    f_back: *mut std::ffi::c_void,
    f_frame: *mut InterpreterFrame311,
    f_trace: *mut PyObject,
    f_lineno: c_int,
}

/// The `f_trace` field of a 3.11 frame object (borrowed; NULL when unset), for the layout
/// check.
///
/// # Safety
/// `frame` is a live frame object of CPython 3.11.
pub unsafe fn frame_trace_311(frame: *mut PyFrameObject) -> *mut PyObject {
    (*(frame as *mut FrameObject311)).f_trace
}

/// The line of a 3.11 frame during a line event, read in place: CPython 3.11's
/// `call_trace` stores it in `f_lineno` for the length of the trace call (and clears it
/// after); 0 (any other moment) means "ask `PyFrame_GetLineNumber`".
///
/// # Safety
/// `frame` is a live frame object of CPython 3.11, layout checked at start.
#[inline]
pub unsafe fn frame_lineno_311(frame: *mut PyFrameObject) -> c_int {
    (*(frame as *mut FrameObject311)).f_lineno
}

/// CPython 3.11's `_PyInterpreterFrame`, up to the fast-locals array.
#[repr(C)]
struct InterpreterFrame311 {
    f_func: *mut PyObject,
    f_globals: *mut PyObject,
    f_builtins: *mut PyObject,
    f_locals: *mut PyObject,
    f_code: *mut PyObject,
    frame_obj: *mut PyObject,
    previous: *mut std::ffi::c_void,
    prev_instr: *mut u16,
    stacktop: c_int,
    is_entry: bool,
    owner: std::os::raw::c_char,
    localsplus: [*mut PyObject; 0],
}

/// Borrowed pointer to fast local `index` of a live 3.11 frame (NULL when unbound).
///
/// # Safety
/// `frame` must be a live frame of CPython 3.11 and `index` below the code's
/// `co_nlocalsplus`. The layout is checked once per session by
/// `Recorder::fast_locals_layout_ok` before this is ever used.
pub unsafe fn fast_local(frame: *mut PyFrameObject, index: usize) -> *mut PyObject {
    let f = frame as *mut FrameObject311;
    let iframe = (*f).f_frame;
    *(*iframe).localsplus.as_ptr().add(index)
}

/// Borrowed code object of a live 3.11 frame (`f_frame->f_code`), without the reference
/// counting of `PyFrame_GetCode`.
///
/// # Safety
/// `frame` must be a live frame of CPython 3.11 whose layout was checked as for
/// [`fast_local`].
pub unsafe fn frame_code_311(frame: *mut PyFrameObject) -> *mut PyObject {
    let f = frame as *mut FrameObject311;
    (*(*f).f_frame).f_code
}

/// Offset of `co_code_adaptive` (the bytecode the frame's `prev_instr` points into) in
/// CPython 3.11's `PyCodeObject` (Include/cpython/code.h), measured against 3.11.7's headers.
const CODE_ADAPTIVE_311: usize = 184;

/// `PyFrame_GetLasti` of a live 3.11 frame, computed in place as CPython does: the offset in
/// bytes of the last instruction started, or -1 before the first.
///
/// # Safety
/// `frame` must be a live frame of CPython 3.11 whose layout was checked at session start
/// (`fast_locals_layout_ok` compares this with `PyFrame_GetLasti`).
#[inline]
pub unsafe fn frame_lasti_311(frame: *mut PyFrameObject) -> c_int {
    let iframe = (*(frame as *mut FrameObject311)).f_frame;
    let start = ((*iframe).f_code as *const u8).add(CODE_ADAPTIVE_311) as *const u16;
    let units = (*iframe).prev_instr.cast_const().offset_from(start);
    if units < 0 {
        -1
    } else {
        (units * 2) as c_int
    }
}

/// `PyCell_Check`.
///
/// # Safety
/// `op` must be a valid object pointer.
pub unsafe fn is_cell(op: *mut PyObject) -> bool {
    pyo3::ffi::Py_TYPE(op) == std::ptr::addr_of_mut!(PyCell_Type)
}

#[repr(C)]
struct CellObject {
    ob_refcnt: isize,
    ob_type: *mut std::ffi::c_void,
    ob_ref: *mut PyObject,
}

/// `PyCell_GET`: borrowed contents of a cell (NULL when empty).
///
/// # Safety
/// `op` must be a cell object.
pub unsafe fn cell_contents(op: *mut PyObject) -> *mut PyObject {
    (*(op as *mut CellObject)).ob_ref
}

/// Offset of `gilstate.tstate_current` (the thread state holding the GIL, what
/// `PyThreadState_Get` returns) in CPython 3.11's `_PyRuntimeState`
/// (Include/internal/pycore_runtime.h), measured against 3.11.7's headers and checked at
/// session start ([`current_tstate_layout_ok`]). 3.12 moved the field and 3.13 made it a
/// thread-local, so later versions call `PyThreadState_Get`.
#[cfg(not(Py_3_12))]
const RUNTIME_TSTATE_CURRENT: usize = 576;

#[cfg(not(Py_3_12))]
extern "C" {
    /// The interpreter runtime's global state (exported by libpython 3.11).
    static _PyRuntime: u8;
}

/// The current thread state read from the runtime in place: what `PyThreadState_Get`
/// returns, without the call into libpython on every event.
///
/// # Safety
/// GIL held, and [`current_tstate_layout_ok`] returned true.
#[cfg(not(Py_3_12))]
#[inline(always)]
pub unsafe fn current_tstate_inline() -> *mut PyThreadState {
    let field = std::ptr::addr_of!(_PyRuntime)
        .add(RUNTIME_TSTATE_CURRENT)
        .cast::<std::sync::atomic::AtomicPtr<PyThreadState>>();
    // A relaxed load, as CPython's own `_PyThreadState_GET` does.
    (*field).load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether [`current_tstate_inline`] reads what `PyThreadState_Get` returns.
///
/// # Safety
/// GIL held.
#[cfg(not(Py_3_12))]
pub unsafe fn current_tstate_layout_ok() -> bool {
    let ts = pyo3::ffi::PyThreadState_Get();
    !ts.is_null() && current_tstate_inline() == ts
}

/// 3.12+ read the current thread state through the C API.
///
/// # Safety
/// None needed; `unsafe` to match the 3.11 function.
#[cfg(Py_3_12)]
pub unsafe fn current_tstate_layout_ok() -> bool {
    false
}

/// 3.12+: never called ([`current_tstate_layout_ok`] is false there).
///
/// # Safety
/// GIL held.
#[cfg(Py_3_12)]
#[inline(always)]
pub unsafe fn current_tstate_inline() -> *mut PyThreadState {
    pyo3::ffi::PyThreadState_Get()
}

/// Offset of `id` (the thread state's unique number, what `PyThreadState_GetID` returns) in
/// `PyThreadState` (Include/cpython/pystate.h): after the fields listed for the recursion
/// counters below, the tracing and exception state, `dict`, the gilstate counter, the
/// thread ids, the trash and coroutine-tracking fields and `context` / `context_ver`.
/// Measured per version and checked at session start ([`thread_id_layout_ok`]).
#[cfg(not(Py_3_12))]
const THREAD_STATE_ID: usize = 240;
#[cfg(Py_3_12)]
const THREAD_STATE_ID: usize = 224;

/// `PyThreadState_GetID(tstate)` read in place (a call into libpython saved on every event).
///
/// # Safety
/// `tstate` is a live thread state, and [`thread_id_layout_ok`] returned true.
#[inline]
pub unsafe fn thread_id_inline(tstate: *mut PyThreadState) -> u64 {
    *((tstate as *const u8).add(THREAD_STATE_ID) as *const u64)
}

/// Whether [`thread_id_inline`] reads what `PyThreadState_GetID` returns, on every thread
/// state of the interpreter (a fresh one would be a stronger check, but making one uses up
/// an id and shifts the ids of the program's later threads).
///
/// # Safety
/// GIL held.
pub unsafe fn thread_id_layout_ok() -> bool {
    let mut ts = pyo3::ffi::PyInterpreterState_ThreadHead(pyo3::ffi::PyInterpreterState_Get());
    let mut seen = 0;
    while !ts.is_null() {
        let id = PyThreadState_GetID(ts);
        if id == 0 || thread_id_inline(ts) != id {
            return false;
        }
        seen += 1;
        ts = pyo3::ffi::PyThreadState_Next(ts);
    }
    seen > 0
}

/// The value of an exact `int` that fits one 30-bit digit, read in place; `None` for a
/// larger one (read through the C API instead). The layouts (Include/cpython/longintrepr.h):
/// - 3.11: `ob_size` (the signed digit count) at offset 16, the digits at 24;
/// - 3.12+: `lv_tag` at 16 (the digit count above its 3 low bits; the low 2 bits the sign:
///   0 positive, 1 zero, 2 negative), the digits at 24.
///
/// Checked at session start ([`small_int_layout_ok`]).
///
/// # Safety
/// `op` is a live object whose type is exactly `int`.
#[inline]
pub unsafe fn small_int(op: *mut PyObject) -> Option<i64> {
    let base = op as *const u8;
    // Read only once the digit count says there is one (zero may have none allocated).
    let digit = || *(base.add(24) as *const u32) as i64;
    #[cfg(not(Py_3_12))]
    {
        match *(base.add(16) as *const isize) {
            0 => Some(0),
            1 => Some(digit()),
            -1 => Some(-digit()),
            _ => None,
        }
    }
    #[cfg(Py_3_12)]
    {
        let tag = *(base.add(16) as *const usize);
        match tag >> 3 {
            0 => Some(0),
            1 => Some((1 - (tag & 3) as i64) * digit()),
            _ => None,
        }
    }
}

/// Whether [`small_int`] reads what `PyLong_AsLongLong` returns, on one-digit values of both
/// signs and zero, and gives `None` for wider ones.
///
/// # Safety
/// GIL held.
pub unsafe fn small_int_layout_ok() -> bool {
    let one_digit = [0i64, 1, -1, 7, -12_345, (1 << 30) - 1, -((1 << 30) - 1)];
    let wider = [1i64 << 30, -(1i64 << 40), i64::MAX, i64::MIN];
    let check = |v: i64, expect_inline: bool| {
        let op = pyo3::ffi::PyLong_FromLongLong(v);
        if op.is_null() {
            pyo3::ffi::PyErr_Clear();
            return false;
        }
        let ok = match small_int(op) {
            Some(read) => expect_inline && read == v,
            None => !expect_inline,
        };
        pyo3::ffi::Py_DECREF(op);
        ok
    };
    one_digit.iter().all(|&v| check(v, true)) && wider.iter().all(|&v| check(v, false))
}

/// Offsets of the Python recursion counters (`recursion_remaining`, `recursion_limit`) in
/// `PyThreadState` (Include/cpython/pystate.h), per version:
/// - 3.11: prev, next, interp, _initialized, _static, then these;
/// - 3.12: prev, next, interp, the 4-byte `_status` bit field, then `py_recursion_*`;
/// - 3.13: prev, next, interp, eval_breaker (8 bytes each), the 4-byte `_status`, `_whence`
///   and `state` (ints), then these.
#[cfg(not(Py_3_12))]
const RECURSION_REMAINING: usize = 32;
#[cfg(all(Py_3_12, not(Py_3_13)))]
const RECURSION_REMAINING: usize = 28;
#[cfg(Py_3_13)]
const RECURSION_REMAINING: usize = 44;
const RECURSION_LIMIT: usize = RECURSION_REMAINING + 4;

/// The current thread's recursion depth as CPython 3.11 counts it (limit − remaining), or
/// None when the layout does not check out (`recursion_limit` must equal `limit`).
///
/// # Safety
/// GIL held; `limit` is `sys.getrecursionlimit()`.
pub unsafe fn recursion_depth(limit: i32) -> Option<i32> {
    let ts = pyo3::ffi::PyThreadState_Get() as *mut u8;
    let lim = *(ts.add(RECURSION_LIMIT) as *const c_int);
    if lim != limit {
        return None;
    }
    Some(lim - *(ts.add(RECURSION_REMAINING) as *const c_int))
}

/// Gives the current thread `by` more levels of recursion before RecursionError. CPython
/// keeps the offset through `sys.setrecursionlimit`, which recomputes `remaining` from the
/// depth.
///
/// # Safety
/// GIL held; the layout was checked with [`recursion_depth`].
pub unsafe fn shift_recursion_remaining(by: i32) {
    let ts = pyo3::ffi::PyThreadState_Get() as *mut u8;
    *(ts.add(RECURSION_REMAINING) as *mut c_int) += by;
}

/// The `previous` link of a live 3.11 frame, and whether it is an entry frame (the first
/// frame of a C-level call into the interpreter).
///
/// # Safety
/// `frame` is a live frame of CPython 3.11 (layout verified by the fast-locals check).
pub unsafe fn entry_link(frame: *mut PyFrameObject) -> (*mut *mut std::ffi::c_void, bool) {
    let iframe = (*(frame as *mut FrameObject311)).f_frame;
    (
        std::ptr::addr_of_mut!((*iframe).previous),
        (*iframe).is_entry,
    )
}

/// The first fields of CPython 3.12's and 3.13's `_PyInterpreterFrame`
/// (Include/internal/pycore_frame.h; the same offsets in both versions).
#[repr(C)]
struct InterpreterFrame312 {
    f_code: *mut PyObject,
    previous: *mut InterpreterFrame312,
    f_funcobj: *mut PyObject,
    f_globals: *mut PyObject,
    f_builtins: *mut PyObject,
    f_locals: *mut PyObject,
    frame_obj: *mut PyObject,
    instr: *mut u16,
    stacktop: c_int,
    return_offset: u16,
    owner: std::os::raw::c_char,
}

/// `FRAME_OWNED_BY_CSTACK`: the shim frame CPython 3.12+ pushes where C enters the
/// interpreter.
const FRAME_OWNED_BY_CSTACK: std::os::raw::c_char = 3;

/// On 3.12+, the `previous` link of the C-entry shim frame right below `frame`, when every
/// fact checks out: `frame`'s interpreter frame names `code`, the frame below it is a shim
/// owned by the C stack, and the frame below the shim runs `back_code` (the code of
/// `frame.f_back`). None otherwise: the layout is not what this build expects.
///
/// # Safety
/// `frame` is the live, executing frame object of `code` on a 3.12 or 3.13 interpreter,
/// GIL held.
pub unsafe fn shim_link_312(
    frame: *mut PyFrameObject,
    code: *mut PyObject,
    back_code: *mut PyObject,
) -> Option<*mut *mut std::ffi::c_void> {
    let iframe = (*(frame as *mut FrameObject311)).f_frame as *mut InterpreterFrame312;
    if iframe.is_null() || (*iframe).f_code != code {
        return None;
    }
    let shim = (*iframe).previous;
    if shim.is_null() || (*shim).owner != FRAME_OWNED_BY_CSTACK {
        return None;
    }
    let below = (*shim).previous;
    if below.is_null() || (*below).f_code != back_code {
        return None;
    }
    Some(std::ptr::addr_of_mut!((*shim).previous) as *mut *mut std::ffi::c_void)
}
