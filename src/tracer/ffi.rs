//! CPython 3.11 C-API functions that `pyo3-ffi` does not declare. All are exported by
//! libpython 3.11 (`nm -D libpython3.11.so`); the `Py*` ones are public API, and
//! `_PyEval_SetTrace` is the per-thread-state setter that 3.12's public
//! `PyEval_SetTraceAllThreads` is built on.

use std::os::raw::c_int;

use pyo3::ffi::{PyFrameObject, PyObject, PyThreadState, Py_tracefunc};

extern "C" {
    pub fn PyFrame_GetLocals(frame: *mut PyFrameObject) -> *mut PyObject;
    pub fn PyFrame_GetGlobals(frame: *mut PyFrameObject) -> *mut PyObject;
    pub fn PyFrame_GetLasti(frame: *mut PyFrameObject) -> c_int;
    pub fn PyThreadState_GetID(tstate: *mut PyThreadState) -> u64;
    pub fn _PyEval_SetTrace(
        tstate: *mut PyThreadState,
        func: Option<Py_tracefunc>,
        obj: *mut PyObject,
    ) -> c_int;
}
