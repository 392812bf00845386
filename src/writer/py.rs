//! The streaming readers as Python sees them (`ct_recorder.trace_reader`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use runtime_tracing::TraceLowLevelEvent;

use super::reader::{End, EventReader, ReadError};

fn value_error(e: ReadError) -> PyErr {
    PyValueError::new_err(e.0)
}

/// Iterates over a trace's events in chunks: each item is the JSON text of a list of up
/// to `chunk` events (the format's serde representation), so Python decodes a chunk with
/// one `json.loads` and never holds more than a chunk. After the last chunk, `complete`
/// and `end_reason` tell whether the events file was closed by the recorder.
#[pyclass(module = "ct_recorder._native", unsendable)]
pub struct EventChunks {
    reader: EventReader,
    chunk: usize,
    buf: Vec<u8>,
    events: u64,
    /// Only events of these kinds (`"Call"`, `"Step"`…); all when `None`.
    kinds: Option<Vec<String>>,
}

#[pymethods]
impl EventChunks {
    #[new]
    #[pyo3(signature = (path, chunk = 4096, kinds = None))]
    fn new(path: PathBuf, chunk: usize, kinds: Option<Vec<String>>) -> PyResult<Self> {
        Ok(EventChunks {
            reader: EventReader::open(&path).map_err(value_error)?,
            chunk: chunk.max(1),
            buf: Vec::with_capacity(1 << 16),
            events: 0,
            kinds,
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<String>> {
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
                    if kinds.as_ref().is_some_and(|k| !k.iter().any(|k| k == kind)) {
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
        Ok(Some(text))
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
        // Only the records the summary reads are decoded; the rest are counted by kind.
        while let Some(kind) = reader.next_record()? {
            events += 1;
            *kinds.entry(kind).or_default() += 1;
            if !matches!(kind, "Function" | "Call" | "Path") {
                continue;
            }
            match reader.decode()? {
                TraceLowLevelEvent::Function(f) => {
                    functions.push(f.name);
                    calls.push(0);
                }
                TraceLowLevelEvent::Call(c) => {
                    if let Some(n) = calls.get_mut(c.function_id.0) {
                        *n += 1;
                    }
                }
                TraceLowLevelEvent::Path(p) => paths.push(p.to_string_lossy().into_owned()),
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
