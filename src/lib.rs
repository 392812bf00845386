//! ct-recorder: a Python execution recorder that writes CodeTracer traces.
//!
//! The crate is both the Python extension module `ct_recorder._native` (built by maturin
//! with the `extension-module` feature) and an ordinary Rust library, so the parts that do
//! not need a running interpreter (trace writing, naming rules, filters) are tested and
//! benchmarked from Rust directly.
//!
//! Layout:
//! - [`writer`]: the CodeTracer trace format, streamed by a writer thread;
//! - [`tracer`]: the C-level trace hook (the hot path) and its per-code-object cache;
//! - [`encode`]: Python values to trace values, bounded and side-effect free;
//! - [`session`]: start/stop of a recording, the run directory's metadata files;
//! - [`naming`]: module-naming engines (`globals`, and `legacy` behind the
//!   `legacy-resolver` feature);
//! - [`filters`]: trace filter files and their evaluation;
//! - [`policy`]: the run policy (engine choice, shadow compare) and its configuration layers;
//! - [`cli`]: the `ct-record` command line (clap), handed to the Python launcher.

/// The Rust allocator of the extension module (only there: test binaries keep the system
/// allocator, and `tests/hot_path_allocations.rs` installs its own counting one). The
/// recorder's per-module and per-code-object bookkeeping is many small blocks; see
/// docs/performance.md, "Allocator".
#[cfg(feature = "extension-module")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod cli;
pub mod encode;
pub mod filters;
pub mod logging;
pub mod naming;
pub mod policy;
pub mod process;
pub mod rollout_cli;
pub mod rundir;
pub mod session;
pub mod tracer;
pub mod writer;

use std::path::PathBuf;

use pyo3::create_exception;
use pyo3::exceptions::{PyBaseException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::encode::Limits;
use crate::session::SessionConfig;
use crate::tracer::OnError;
use crate::writer::TraceFormat;

create_exception!(
    ct_recorder,
    RecorderError,
    PyBaseException,
    "The recorder failed and --on-recorder-error=abort asked to fail loudly. Derives from \
     BaseException so that a program's `except Exception` does not swallow it."
);

create_exception!(
    ct_recorder,
    ConfigError,
    pyo3::exceptions::PyValueError,
    "A configuration error found before the program starts (a bad filter file, an unknown \
     policy value): ct-record reports it and exits with status 2."
);

pub(crate) fn recorder_error_type(py: Python<'_>) -> PyResult<Bound<'_, PyType>> {
    Ok(py.get_type::<RecorderError>())
}

/// `ct-record`'s entry point: parses `argv` and runs the program; returns the exit status.
#[pyfunction]
#[pyo3(name = "main")]
fn py_main(py: Python<'_>, argv: Vec<std::ffi::OsString>) -> PyResult<i32> {
    cli::main(py, argv)
}

/// The error python itself reports when it cannot compile the script at `path`, or None.
///
/// `compile()` on the file's bytes and the interpreter's file tokenizer word some errors
/// differently (null bytes, unknown encodings, non-UTF-8 source). After `compile()` has
/// failed, the launcher asks this function for python's own wording: CPython parses the
/// file with its file tokenizer (`PyRun_FileExFlags`). The namespace has no builtins, so
/// even if the file did compile this way, nothing in it could import or call anything.
#[pyfunction]
fn file_compile_error(py: Python<'_>, path: PathBuf) -> PyResult<Option<PyObject>> {
    use std::os::unix::ffi::OsStrExt;
    let cpath = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| PyValueError::new_err("path contains a NUL byte"))?;
    let globals = pyo3::types::PyDict::new(py);
    globals.set_item("__builtins__", pyo3::types::PyDict::new(py))?;
    // SAFETY: a FILE* opened here and closed by PyRun_FileExFlags (closeit = 1); GIL held.
    unsafe {
        let fp = libc::fopen(cpath.as_ptr(), c"rb".as_ptr());
        if fp.is_null() {
            return Ok(None);
        }
        let result = pyo3::ffi::PyRun_FileExFlags(
            fp.cast(),
            cpath.as_ptr(),
            pyo3::ffi::Py_file_input,
            globals.as_ptr(),
            globals.as_ptr(),
            1,
            std::ptr::null_mut(),
        );
        if result.is_null() {
            let err = PyErr::fetch(py);
            return Ok(Some(err.into_value(py).into_any()));
        }
        pyo3::ffi::Py_DECREF(result);
    }
    Ok(None)
}

/// The current thread's recursion depth as CPython counts it (None if unknown).
#[pyfunction]
fn _recursion_depth(py: Python<'_>) -> PyResult<Option<i32>> {
    let limit: i32 = py
        .import("sys")?
        .getattr("getrecursionlimit")?
        .call0()?
        .extract()?;
    // SAFETY: GIL held.
    Ok(unsafe { tracer::ffi::recursion_depth(limit) })
}

/// Launcher support: gives the program `by` extra levels of recursion, the depth of the
/// launcher frames under it, so RecursionError comes at the same depth as under python.
#[pyfunction]
fn _shift_recursion_limit(py: Python<'_>, by: i32) -> PyResult<bool> {
    if _recursion_depth(py)?.is_none() || by <= 0 {
        return Ok(false);
    }
    // SAFETY: GIL held, layout checked just above.
    unsafe { tracer::ffi::shift_recursion_remaining(by) };
    Ok(true)
}

/// Launcher support: the code object whose first frame becomes the program's stack bottom.
#[pyfunction]
fn _set_entry_code(code: &Bound<'_, PyAny>) {
    tracer::ENTRY_CODE.store(code.as_ptr() as usize, std::sync::atomic::Ordering::Relaxed);
}

/// Launcher support: calls `func(*args)` from C, so that its frame is an entry frame.
#[pyfunction]
#[pyo3(signature = (func, *args))]
fn _call_as_entry(
    func: &Bound<'_, PyAny>,
    args: &Bound<'_, pyo3::types::PyTuple>,
) -> PyResult<PyObject> {
    Ok(func.call1(args)?.unbind())
}

/// `ct-rollout`'s entry point; returns the exit status.
#[pyfunction]
fn rollout_main(argv: Vec<std::ffi::OsString>) -> i32 {
    rollout_cli::main(argv)
}

/// A file name's bytes as text for the trace: UTF-8 as it is; each byte that is not part of
/// valid UTF-8 as `\xNN` (readable, and one entry per file however it is reached).
pub fn path_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// `max_trace_size=` of `start()`: `None` for the default (as `ct-record`), a number of bytes,
/// or a size as `--max-trace-size` takes it (`"500M"`, `"unlimited"`).
fn max_trace_size_of(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    let bad = |e: String| ConfigError::new_err(format!("max_trace_size: {e}"));
    let parsed = match value {
        None => cli::parse_max_trace_size(cli::DEFAULT_MAX_TRACE_SIZE),
        Some(v) if v.is_none() => cli::parse_max_trace_size(cli::DEFAULT_MAX_TRACE_SIZE),
        Some(v) if v.is_instance_of::<pyo3::types::PyBool>() => {
            return Err(bad(
                "expected a number of bytes or a size such as '500M'".into()
            ))
        }
        Some(v) => match v.extract::<u64>() {
            Ok(n) => cli::parse_max_trace_size(&n.to_string()),
            Err(_) => match v.extract::<String>() {
                Ok(text) => cli::parse_max_trace_size(&text),
                Err(_) => Err("expected a number of bytes or a size such as '500M'".into()),
            },
        },
    };
    parsed.map(|m| m.0).map_err(bad)
}

/// Starts recording the current process into `trace_dir`.
#[pyfunction]
#[pyo3(signature = (trace_dir, *, format = None, program = None, args = Vec::new(), own_dir = None, on_error = "disable", skip_current_stack = false, finish_on_sigterm = false, trace_filters = Vec::new(), default_filter = true, program_dir = None, shadow_sample = None, shadow_budget = None, metrics_addr = None, metrics_required = true, metrics_linger = 0.0, metrics_push = None, quiet = false, command = Vec::<std::ffi::OsString>::new(), max_trace_size = None))]
#[allow(clippy::too_many_arguments)]
fn start(
    py: Python<'_>,
    trace_dir: PathBuf,
    format: Option<&str>,
    program: Option<PathBuf>,
    args: Vec<std::ffi::OsString>,
    own_dir: Option<PathBuf>,
    on_error: &str,
    skip_current_stack: bool,
    finish_on_sigterm: bool,
    trace_filters: Vec<PathBuf>,
    default_filter: bool,
    program_dir: Option<PathBuf>,
    shadow_sample: Option<String>,
    shadow_budget: Option<String>,
    metrics_addr: Option<String>,
    metrics_required: bool,
    metrics_linger: f64,
    metrics_push: Option<String>,
    quiet: bool,
    command: Vec<std::ffi::OsString>,
    max_trace_size: Option<Bound<'_, PyAny>>,
) -> PyResult<()> {
    let cap_given = max_trace_size.as_ref().is_some_and(|v| !v.is_none());
    let max_trace_size = max_trace_size_of(max_trace_size.as_ref())?;
    let command: Vec<String> = command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let format_given = format.is_some();
    let format = match format {
        None => session::DEFAULT_FORMAT,
        Some(name) => TraceFormat::parse(name).map_err(PyValueError::new_err)?,
    };
    let on_error = <OnError as clap::ValueEnum>::from_str(on_error, false).map_err(|_| {
        PyValueError::new_err(format!(
            "unknown on_error {on_error:?} (expected 'disable' or 'abort')"
        ))
    })?;
    let program = match program {
        Some(p) => p,
        None => py
            .import("sys")?
            .getattr("argv")?
            .get_item(0)
            .and_then(|v| v.extract::<PathBuf>())
            .unwrap_or_default(),
    };
    // Names in the trace files are text: a non-UTF-8 byte shows as `\xNN` there, the same
    // way as in the code objects' file names, so the program has one path entry.
    let program = path_text(program.as_os_str().as_encoded_bytes());
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let own_dir = own_dir.map(|d| d.to_string_lossy().into_owned());
    let metrics_linger = cli::linger_from_seconds(metrics_linger)
        .map_err(|e| ConfigError::new_err(format!("metrics_linger={metrics_linger}: {e}")))?;
    if finish_on_sigterm {
        process::install_sigterm_handler().map_err(|e| {
            pyo3::exceptions::PyOSError::new_err(format!("cannot install the SIGTERM handler: {e}"))
        })?;
    }
    // ct-record computed the policy already; the Python API computes it here.
    let policy = match session::take_pending_policy() {
        Some(p) => p,
        None => {
            let dir = program_dir.clone().unwrap_or(std::env::current_dir()?);
            session::build_policy(&dir, None).map_err(|e| ConfigError::new_err(e.to_string()))?
        }
    };
    if policy.evidence_only.value && (format_given || cap_given) {
        let option = if format_given {
            "format="
        } else {
            "max_trace_size="
        };
        return Err(ConfigError::new_err(format!(
            "{option} cannot be combined with evidence-only mode: an evidence-only run writes \
             no trace"
        )));
    }
    session::start(
        py,
        SessionConfig {
            trace_dir,
            format,
            program,
            args,
            own_dir,
            on_error,
            limits: Limits::default(),
            max_trace_size,
            skip_current_stack,
            policy,
            shadow: session::ShadowOptions {
                sample: shadow_sample,
                budget: shadow_budget,
                metrics_addr,
                metrics_required,
                metrics_linger,
                metrics_push,
                quiet,
                command,
            },
            filters: filters::LoadOptions {
                program_dir,
                env_value: std::env::var("CODETRACER_TRACE_FILTER")
                    .ok()
                    .filter(|v| !v.trim().is_empty()),
                cli_paths: trace_filters,
                include_builtin: default_filter,
            },
        },
    )
}

/// Stops recording, writes the trace files; returns a summary dict (None if not recording).
/// `exit_code` is the program's exit status, when known (for the shadow run metadata).
#[pyfunction]
#[pyo3(signature = (exit_code = None))]
fn stop(py: Python<'_>, exit_code: Option<i32>) -> PyResult<PyObject> {
    match session::stop(py, exit_code)? {
        None => Ok(py.None()),
        Some(summary) => {
            let value =
                serde_json::to_value(&summary).map_err(|e| PyValueError::new_err(e.to_string()))?;
            json_to_py(py, &value)
        }
    }
}

/// `ct_recorder.configure_policy(...)`: the highest policy layer, for recordings started
/// later in this process. `None` leaves a setting to the lower layers.
#[pyfunction]
#[pyo3(signature = (*, module_name_from_globals = None, shadow_compare = None, evidence_only = None))]
fn configure_policy(
    module_name_from_globals: Option<bool>,
    shadow_compare: Option<bool>,
    evidence_only: Option<bool>,
) {
    session::configure_python_api(policy::PythonApiValues {
        module_name_from_globals,
        shadow_compare,
        evidence_only,
    });
}

/// The effective policy for a program in `program_dir` (default: the working directory),
/// as a dict: values, the layer that set each, and its source.
#[pyfunction]
#[pyo3(signature = (program_dir = None))]
fn policy_snapshot(py: Python<'_>, program_dir: Option<PathBuf>) -> PyResult<PyObject> {
    let dir = program_dir.unwrap_or(std::env::current_dir()?);
    let policy =
        session::build_policy(&dir, None).map_err(|e| ConfigError::new_err(e.to_string()))?;
    json_to_py(py, &policy.to_json())
}

/// A JSON value as Python objects, built here rather than with the `json` module (at the
/// end of a run, `import json` could find a `json.py` of the program's).
fn json_to_py(py: Python<'_>, value: &serde_json::Value) -> PyResult<PyObject> {
    use pyo3::IntoPyObjectExt;
    use serde_json::Value;
    Ok(match value {
        Value::Null => py.None(),
        Value::Bool(b) => b.into_py_any(py)?,
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_py_any(py)?,
            (None, Some(u)) => u.into_py_any(py)?,
            _ => n.as_f64().unwrap_or(f64::NAN).into_py_any(py)?,
        },
        Value::String(s) => s.into_py_any(py)?,
        Value::Array(items) => {
            let list = pyo3::types::PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any().unbind()
        }
        Value::Object(map) => {
            let dict = pyo3::types::PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, json_to_py(py, v)?)?;
            }
            dict.into_any().unbind()
        }
    })
}

#[pyfunction]
fn flush(py: Python<'_>) {
    session::flush(py);
}

#[pyfunction]
fn is_recording() -> bool {
    session::is_recording()
}

/// A trace or profile function (the same C signature) that does nothing.
unsafe extern "C" fn noop_hook(
    _obj: *mut pyo3::ffi::PyObject,
    _frame: *mut pyo3::ffi::PyFrameObject,
    _what: std::os::raw::c_int,
    _arg: *mut pyo3::ffi::PyObject,
) -> std::os::raw::c_int {
    0
}

/// Benchmark floor only: installs a C-level trace hook that does nothing on the calling
/// thread. Whatever a 3.11 tracer does, it pays at least what this costs.
#[pyfunction]
fn _bench_install_noop_hook() {
    // SAFETY: called from Python, so the GIL is held.
    unsafe { pyo3::ffi::PyEval_SetTrace(Some(noop_hook), std::ptr::null_mut()) };
}

/// Benchmark floor only (3.11 evidence-only): installs a C-level profile function that
/// does nothing on the calling thread. A profile hook costs at least this.
#[pyfunction]
fn _bench_install_noop_profile() {
    // SAFETY: called from Python, so the GIL is held.
    unsafe { pyo3::ffi::PyEval_SetProfile(Some(noop_hook), std::ptr::null_mut()) };
}

/// A `METH_FASTCALL` function that returns its `self` (new reference): built over
/// `sys.monitoring.DISABLE`, the cheapest possible C-level `PY_START` callback.
unsafe extern "C" fn return_self(
    slf: *mut pyo3::ffi::PyObject,
    _args: *mut *mut pyo3::ffi::PyObject,
    _nargs: pyo3::ffi::Py_ssize_t,
) -> *mut pyo3::ffi::PyObject {
    pyo3::ffi::Py_INCREF(slf);
    slf
}

struct BenchDef(pyo3::ffi::PyMethodDef);
// SAFETY: immutable after construction, only read by CPython.
unsafe impl Sync for BenchDef {}
// SAFETY: as above.
unsafe impl Send for BenchDef {}
static RETURN_SELF_DEF: std::sync::OnceLock<BenchDef> = std::sync::OnceLock::new();

/// Benchmark floor only (3.12+ evidence-only): a C-level callback (`METH_FASTCALL`) that
/// returns `value`, e.g. `sys.monitoring.DISABLE` for a `PY_START` that costs one call per
/// code object and does nothing.
#[pyfunction]
fn _bench_c_callback_returning(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<PyObject> {
    let def = RETURN_SELF_DEF.get_or_init(|| {
        BenchDef(pyo3::ffi::PyMethodDef {
            ml_name: c"ct_recorder_bench_noop_callback".as_ptr(),
            ml_meth: pyo3::ffi::PyMethodDefPointer {
                PyCFunctionFast: return_self,
            },
            ml_flags: pyo3::ffi::METH_FASTCALL,
            ml_doc: std::ptr::null(),
        })
    });
    let def = &def.0 as *const pyo3::ffi::PyMethodDef as *mut pyo3::ffi::PyMethodDef;
    // SAFETY: GIL held; `def` lives for the process; `value` becomes the function's self
    // (PyCFunction_NewEx takes its own reference).
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            pyo3::ffi::PyCFunction_NewEx(def, value.as_ptr(), std::ptr::null_mut()),
        )
        .map(|f| f.unbind())
    }
}

/// The extension module `ct_recorder._native`. Public so that a Rust test can register it
/// in an embedded interpreter (`pyo3::append_to_inittab!`, tests/default_format_reader.rs).
#[pymodule]
pub fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Every panic in this library is caught (trace hook, shadow engine) and reported by the
    // code that catches it; Rust's default hook would also print it on the program's stderr.
    std::panic::set_hook(Box::new(|info| tracing::debug!("caught panic: {info}")));
    process::install_fork_handler();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("RecorderError", m.py().get_type::<RecorderError>())?;
    m.add("ConfigError", m.py().get_type::<ConfigError>())?;
    m.add_function(wrap_pyfunction!(py_main, m)?)?;
    m.add_function(wrap_pyfunction!(rollout_main, m)?)?;
    m.add_function(wrap_pyfunction!(file_compile_error, m)?)?;
    m.add_function(wrap_pyfunction!(_recursion_depth, m)?)?;
    m.add_function(wrap_pyfunction!(_shift_recursion_limit, m)?)?;
    m.add_function(wrap_pyfunction!(_set_entry_code, m)?)?;
    m.add_function(wrap_pyfunction!(_call_as_entry, m)?)?;
    m.add_function(wrap_pyfunction!(start, m)?)?;
    m.add_function(wrap_pyfunction!(stop, m)?)?;
    m.add_function(wrap_pyfunction!(flush, m)?)?;
    m.add_function(wrap_pyfunction!(configure_policy, m)?)?;
    m.add_function(wrap_pyfunction!(policy_snapshot, m)?)?;
    m.add_function(wrap_pyfunction!(is_recording, m)?)?;
    // Streaming trace readers (ct_recorder.trace_reader, ct_recorder.summary).
    m.add_class::<writer::py::EventChunks>()?;
    m.add_function(wrap_pyfunction!(writer::py::scan_trace, m)?)?;
    m.add_function(wrap_pyfunction!(writer::py::convert_trace, m)?)?;
    m.add_function(wrap_pyfunction!(tracer::settrace::thread_bootstrap, m)?)?;
    m.add_function(wrap_pyfunction!(_bench_install_noop_hook, m)?)?;
    m.add_function(wrap_pyfunction!(_bench_install_noop_profile, m)?)?;
    m.add_function(wrap_pyfunction!(_bench_c_callback_returning, m)?)?;
    Ok(())
}
