//! The streaming readers as Python sees them (`ct_recorder.trace_reader`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use runtime_tracing::TraceLowLevelEvent;

use super::py_events::Fast;
use super::py_events::{self, Fail, Keys};
use super::reader::{End, EventReader, Next, ReadError};
use super::record::{Rec, Val};
use super::TraceFormat;

fn value_error(e: ReadError) -> PyErr {
    PyValueError::new_err(e.0)
}

/// Iterates over a trace's events in chunks: each item is a list of up to `chunk` events
/// as Python data (the format's serde representation: `{"Step": {...}}`…), built in Rust
/// from the decoded records ([`super::py_events`]), so Python never holds more than a
/// chunk. With `as_json=True` each item is instead the JSON text of the list, for
/// `json.loads` (the reader's earlier path, kept to check the new one against). After the
/// last chunk, `complete` and `end_reason` tell whether the events file was closed by the
/// recorder.
#[pyclass(module = "ct_recorder._native", unsendable)]
pub struct EventChunks {
    reader: EventReader,
    chunk: usize,
    buf: Vec<u8>,
    events: u64,
    /// Only events of these kinds (`"Call"`, `"Step"`…); all when `None`.
    kinds: Option<Vec<String>>,
    as_json: bool,
    keys: Keys,
    /// The chunk being read: decoded without the GIL, then made into Python data.
    items: Vec<Item>,
    /// Arguments of the calls of the chunk (a compact file's `Arg` records); from
    /// `call_from` on, those of the call not read yet.
    args: Vec<(u32, Val)>,
    call_from: usize,
    /// A binary or JSON `Call`'s arguments, read by [`py_events::cbor_fast`] or
    /// [`py_events::json_fast`].
    fast_args: Vec<(u32, Val)>,
}

/// One event of the chunk being read, decoded as far as it needs to be.
enum Item {
    Step {
        path: u32,
        line: i64,
    },
    /// A `Value` event: the argument `args[i]`.
    Value(usize),
    /// A `Call` with the arguments `args[from..to]`.
    Call {
        function: u32,
        from: usize,
        to: usize,
    },
    Return(Val),
    Event(Box<TraceLowLevelEvent>),
    /// A binary (CBOR) or JSON record, `buf[from..to]`.
    Raw {
        from: usize,
        to: usize,
    },
}

fn wanted(kinds: &Option<Vec<String>>, kind: &str) -> bool {
    kinds.as_ref().is_none_or(|k| k.iter().any(|k| k == kind))
}

impl EventChunks {
    /// Reads the next chunk into `items` (without the GIL): a compact file's records as
    /// they decode, other files' records as bytes. The number of events.
    fn read_chunk(&mut self) -> Result<usize, ReadError> {
        let (reader, kinds, chunk) = (&mut self.reader, &self.kinds, self.chunk);
        let (items, args, buf) = (&mut self.items, &mut self.args, &mut self.buf);
        let fast_args = &mut self.fast_args;
        items.clear();
        buf.clear();
        // The arguments of calls already made into Python data are done with.
        args.drain(..self.call_from);
        self.call_from = 0;
        let call_from = &mut self.call_from;
        let compact = reader.format() == TraceFormat::Compact;
        let (want_value, want_call) = (wanted(kinds, "Value"), wanted(kinds, "Call"));
        let (want_step, want_return) = (wanted(kinds, "Step"), wanted(kinds, "Return"));
        while items.len() < chunk {
            if !compact {
                // The frequent records are read in place (no scan for their end, no copy)
                // into the items a compact file's records give; others are kept as bytes.
                let Some(next) = reader.next_fast(fast_args)? else {
                    break;
                };
                match next {
                    Next::Fast(Fast::Step { path, line }) => {
                        if want_step {
                            items.push(Item::Step { path, line });
                        }
                    }
                    Next::Fast(Fast::Value { variable, value }) => {
                        if want_value {
                            args.push((variable, value));
                            items.push(Item::Value(args.len() - 1));
                        }
                    }
                    Next::Fast(Fast::Call { function }) => {
                        if want_call {
                            let from = args.len();
                            args.append(fast_args);
                            items.push(Item::Call {
                                function,
                                from,
                                to: args.len(),
                            });
                        }
                    }
                    Next::Fast(Fast::Return(value)) => {
                        if want_return {
                            items.push(Item::Return(value));
                        }
                    }
                    // Events of other kinds are skipped without being decoded.
                    Next::Raw(kind) => {
                        if wanted(kinds, kind) {
                            let from = buf.len();
                            buf.extend_from_slice(reader.raw());
                            items.push(Item::Raw {
                                from,
                                to: buf.len(),
                            });
                        }
                    }
                }
                // Every argument kept here belongs to an item of this chunk.
                *call_from = args.len();
                continue;
            }
            let Some(rec) = reader.next_rec()? else {
                break;
            };
            match rec {
                Rec::Step { path, line } => {
                    if want_step {
                        items.push(Item::Step { path, line });
                    }
                }
                Rec::Arg { variable, value } => {
                    // Kept for the call even when `Value` events are not wanted.
                    args.push((variable, value));
                    if want_value {
                        items.push(Item::Value(args.len() - 1));
                    }
                }
                Rec::Call { function, .. } => {
                    let (from, to) = (*call_from, args.len());
                    if want_call {
                        items.push(Item::Call { function, from, to });
                        *call_from = to;
                    } else if !want_value {
                        // Nothing refers to these arguments: keep memory flat when a
                        // filter skips long stretches of the trace.
                        args.truncate(from);
                    } else {
                        *call_from = to;
                    }
                }
                Rec::Return(value) => {
                    if want_return {
                        items.push(Item::Return(value));
                    }
                }
                Rec::Event(event) => {
                    if wanted(kinds, py_events::kind_of(&event)) {
                        items.push(Item::Event(event));
                    }
                }
            }
        }
        Ok(items.len())
    }

    /// The chunk just read, as a Python list of events, made with Python's cyclic garbage
    /// collector paused.
    ///
    /// Every dict counts towards the collector's threshold, and an event's outer dict is
    /// tracked (its value is a dict), so building a chunk used to run a young-generation
    /// collection every few hundred events, each walking the chunk built so far and
    /// promoting it, and then full collections over them: about half of the build time.
    /// Nothing made here can be garbage (each object is referenced from the chunk) and no
    /// Python code runs while the collector is paused; it is switched back on before the
    /// chunk is returned (unless the program had it off), and then collects as usual.
    fn build<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        /// Turns the collector back on when dropped, so an error or a panic in the build
        /// cannot leave the program's collector off.
        struct Paused(bool);
        impl Drop for Paused {
            fn drop(&mut self) {
                if self.0 {
                    // SAFETY: the GIL is still held (dropped inside `build`).
                    unsafe { pyo3::ffi::PyGC_Enable() };
                }
            }
        }
        // SAFETY: the GIL is held; this only flips the interpreter's collector switch.
        let _paused = Paused(unsafe { pyo3::ffi::PyGC_Disable() } != 0);
        self.build_items(py)
    }

    fn build_items<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let k = &mut self.keys;
        let binary = self.reader.format() == TraceFormat::Binary;
        let mut out = Vec::with_capacity(self.items.len());
        for item in &self.items {
            let built = match item {
                Item::Step { path, line } => Ok(py_events::step(py, k, *path, *line)?),
                Item::Value(i) => {
                    let (variable, value) = &self.args[*i];
                    py_events::value_event(py, k, *variable, value)
                }
                Item::Call { function, from, to } => {
                    py_events::call(py, k, *function, &self.args[*from..*to])
                }
                Item::Return(value) => py_events::return_event(py, k, value),
                Item::Event(event) => Ok(py_events::event(py, k, event)?),
                Item::Raw { from, to } => {
                    let raw = &self.buf[*from..*to];
                    let args = &mut self.fast_args;
                    let fast = if binary {
                        py_events::cbor_fast(raw, args)
                    } else {
                        py_events::json_fast(raw, args)
                    };
                    let built = match fast {
                        Some(rec) => py_events::fast(py, k, &rec, args),
                        None if binary => py_events::cbor_item(py, k, raw),
                        None => py_events::json_item(py, k, raw),
                    };
                    match built {
                        Err(Fail::Unsupported) => {
                            Ok(fallback(py, k, self.reader.path(), raw, binary)?)
                        }
                        other => other,
                    }
                }
            };
            match built {
                Ok(obj) => out.push(obj),
                Err(Fail::Py(e)) => return Err(e),
                // Only the raw records' builders give up, and they were handled above.
                Err(Fail::Unsupported) => {
                    return Err(PyValueError::new_err("an event the reader cannot make"))
                }
            }
        }
        PyList::new(py, out)
    }

    /// The next chunk as the JSON text of a list of events (`as_json=True`).
    fn next_json_chunk(&mut self, py: Python<'_>) -> PyResult<Option<PyObject>> {
        let (reader, kinds, chunk) = (&mut self.reader, &self.kinds, self.chunk);
        let mut buf = std::mem::take(&mut self.buf);
        let n = py
            .allow_threads(|| -> Result<usize, ReadError> {
                buf.clear();
                buf.push(b'[');
                let mut n = 0;
                while n < chunk {
                    let Some(kind) = reader.next_record()? else {
                        break;
                    };
                    // Events of other kinds are skipped without being decoded.
                    if !wanted(kinds, kind) {
                        continue;
                    }
                    if n > 0 {
                        buf.push(b',');
                    }
                    reader.current_json(&mut buf)?;
                    n += 1;
                }
                buf.push(b']');
                Ok(n)
            })
            .map_err(value_error)?;
        if n == 0 {
            self.buf = buf;
            return Ok(None);
        }
        self.events += n as u64;
        // JSON text from the file is UTF-8 (serde_json checks it when writing; a file
        // damaged into invalid UTF-8 is reported, not passed on).
        let text = String::from_utf8(buf)
            .map_err(|_| PyValueError::new_err("the events file is not valid UTF-8"))?;
        Ok(Some(text.into_pyobject(py)?.into_any().unbind()))
    }
}

/// A binary or JSON record the builders do not make, through its JSON text and
/// `json.loads` (the JSON path, for this record only).
fn fallback<'py>(
    py: Python<'py>,
    keys: &mut Keys,
    path: &std::path::Path,
    raw: &[u8],
    binary: bool,
) -> PyResult<Bound<'py, PyAny>> {
    if !binary {
        return keys.json_loads(py, raw);
    }
    let malformed = |e: &dyn std::fmt::Display| {
        PyValueError::new_err(format!("{}: a malformed event: {e}", path.display()))
    };
    let event: TraceLowLevelEvent = cbor4ii::serde::from_slice(raw).map_err(|e| malformed(&e))?;
    let text = serde_json::to_vec(&event).map_err(|e| malformed(&e))?;
    keys.json_loads(py, &text)
}

#[pymethods]
impl EventChunks {
    #[new]
    #[pyo3(signature = (path, chunk = 256, kinds = None, as_json = false))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        chunk: usize,
        kinds: Option<Vec<String>>,
        as_json: bool,
    ) -> PyResult<Self> {
        Ok(EventChunks {
            reader: EventReader::open(&path).map_err(value_error)?,
            chunk: chunk.max(1),
            buf: Vec::with_capacity(1 << 16),
            events: 0,
            kinds,
            as_json,
            keys: Keys::new(py)?,
            items: Vec::new(),
            args: Vec::new(),
            call_from: 0,
            fast_args: Vec::new(),
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<PyObject>> {
        if self.as_json {
            return self.next_json_chunk(py);
        }
        let n = py
            .allow_threads(|| self.read_chunk())
            .map_err(value_error)?;
        if n == 0 {
            return Ok(None);
        }
        self.events += n as u64;
        Ok(Some(self.build(py)?.into_any().unbind()))
    }

    /// `None` while events remain; then True (the recorder closed the file) or False.
    #[getter]
    fn complete(&self) -> Option<bool> {
        self.reader.end().map(|e| *e == End::Complete)
    }

    #[getter]
    fn end_reason(&self) -> Option<String> {
        match self.reader.end() {
            Some(End::Truncated(why)) => Some(why.clone()),
            _ => None,
        }
    }

    #[getter]
    fn events(&self) -> u64 {
        self.events
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.reader.path().to_path_buf()
    }

    #[getter]
    fn format(&self) -> &'static str {
        self.reader.format().as_str()
    }
}

/// One streaming pass that counts what a summary shows, without making a Python object
/// per event: event kinds, calls per function, threads, and how the file ended.
#[pyfunction]
pub fn scan_trace(py: Python<'_>, path: PathBuf) -> PyResult<PyObject> {
    let mut reader = EventReader::open(&path).map_err(value_error)?;
    let scan = py.allow_threads(move || -> Result<_, ReadError> {
        let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut functions: Vec<String> = Vec::new();
        let mut calls: Vec<u64> = Vec::new();
        let mut paths: Vec<String> = Vec::new();
        let mut events = 0u64;
        let compact = reader.format() == TraceFormat::Compact;
        let mut fast_args = Vec::new();
        fn call(calls: &mut [u64], function: usize) {
            if let Some(n) = calls.get_mut(function) {
                *n += 1;
            }
        }
        // Only the records the summary reads are decoded; the rest are counted by kind. A
        // compact file's records are read as they are; a binary or JSON file's frequent
        // records in place (a call's function id with them), the others found by their
        // structure and decoded only when they are a `Function`, `Call` or `Path`.
        loop {
            let (kind, event) = if compact {
                let Some(rec) = reader.next_rec()? else {
                    break;
                };
                match rec {
                    Rec::Step { .. } => ("Step", None),
                    Rec::Arg { .. } => ("Value", None),
                    Rec::Call { function, .. } => {
                        call(&mut calls, function as usize);
                        ("Call", None)
                    }
                    Rec::Return(_) => ("Return", None),
                    Rec::Event(event) => (py_events::kind_of(&event), Some(*event)),
                }
            } else {
                match reader.next_fast(&mut fast_args)? {
                    None => break,
                    Some(Next::Fast(Fast::Step { .. })) => ("Step", None),
                    Some(Next::Fast(Fast::Value { .. })) => ("Value", None),
                    Some(Next::Fast(Fast::Call { function })) => {
                        call(&mut calls, function as usize);
                        ("Call", None)
                    }
                    Some(Next::Fast(Fast::Return(_))) => ("Return", None),
                    Some(Next::Raw(kind)) => {
                        let event = matches!(kind, "Function" | "Call" | "Path")
                            .then(|| reader.decode())
                            .transpose()?;
                        (kind, event)
                    }
                }
            };
            events += 1;
            *kinds.entry(kind).or_default() += 1;
            match event {
                Some(TraceLowLevelEvent::Function(f)) => {
                    functions.push(f.name);
                    calls.push(0);
                }
                Some(TraceLowLevelEvent::Call(c)) => call(&mut calls, c.function_id.0),
                Some(TraceLowLevelEvent::Path(p)) => paths.push(p.to_string_lossy().into_owned()),
                _ => {}
            }
        }
        Ok((reader, kinds, functions, calls, paths, events))
    });
    let (reader, kinds, functions, calls, paths, events) = scan.map_err(value_error)?;
    let out = PyDict::new(py);
    out.set_item("events_file", reader.path())?;
    out.set_item("format", reader.format().as_str())?;
    out.set_item("events", events)?;
    out.set_item("kinds", kinds.into_iter().collect::<Vec<_>>())?;
    let mut per_function: Vec<(String, u64)> = functions.into_iter().zip(calls).collect();
    per_function.retain(|(_, n)| *n > 0);
    out.set_item("calls", per_function)?;
    out.set_item("paths", paths)?;
    let end = reader.end().cloned().unwrap_or(End::Complete);
    out.set_item("complete", end == End::Complete)?;
    out.set_item(
        "end_reason",
        match end {
            End::Truncated(why) => Some(why),
            End::Complete => None,
        },
    )?;
    Ok(out.into_any().unbind())
}

/// Converts the trace at `source` into `out_dir` in `format` (see [`super::convert`]).
/// Returns what was done as a dict; a bad source, format or output directory raises
/// `ValueError` and leaves nothing behind.
#[pyfunction]
pub fn convert_trace(
    py: Python<'_>,
    source: PathBuf,
    out_dir: PathBuf,
    format: &str,
) -> PyResult<PyObject> {
    let to = super::TraceFormat::parse(format).map_err(PyValueError::new_err)?;
    let done = py
        .allow_threads(|| super::convert::convert(&source, &out_dir, to))
        .map_err(PyValueError::new_err)?;
    let out = PyDict::new(py);
    out.set_item("events_file", done.events_file)?;
    out.set_item("format", to.as_str())?;
    out.set_item("events", done.events)?;
    out.set_item("complete", done.truncated.is_none())?;
    out.set_item("end_reason", done.truncated)?;
    out.set_item("copied", done.copied)?;
    out.set_item("missing", done.missing)?;
    Ok(out.into_any().unbind())
}
