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
}

#[pymethods]
impl EventChunks {
    #[new]
    #[pyo3(signature = (path, chunk = 4096))]
    fn new(path: PathBuf, chunk: usize) -> PyResult<Self> {
        Ok(EventChunks {
            reader: EventReader::open(&path).map_err(value_error)?,
            chunk: chunk.max(1),
            buf: Vec::with_capacity(1 << 16),
            events: 0,
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self) -> PyResult<Option<String>> {
        self.buf.clear();
        self.buf.push(b'[');
        let mut n = 0;
        while n < self.chunk {
            if n > 0 {
                self.buf.push(b',');
            }
            if !self.reader.next_json(&mut self.buf).map_err(value_error)? {
                if n > 0 {
                    self.buf.pop();
                }
                break;
            }
            n += 1;
        }
        if n == 0 {
            return Ok(None);
        }
        self.events += n as u64;
        self.buf.push(b']');
        // JSON text from the file is UTF-8 (serde_json checks it when writing; a file
        // damaged into invalid UTF-8 is reported, not passed on).
        String::from_utf8(std::mem::take(&mut self.buf))
            .map(Some)
            .map_err(|_| PyValueError::new_err("the events file is not valid UTF-8"))
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
        while let Some(event) = reader.next_event()? {
            events += 1;
            *kinds.entry(kind_name(&event)).or_default() += 1;
            match event {
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

fn kind_name(event: &TraceLowLevelEvent) -> &'static str {
    use TraceLowLevelEvent as E;
    match event {
        E::Step(_) => "Step",
        E::Path(_) => "Path",
        E::VariableName(_) => "VariableName",
        E::Variable(_) => "Variable",
        E::Type(_) => "Type",
        E::Value(_) => "Value",
        E::Function(_) => "Function",
        E::Call(_) => "Call",
        E::Return(_) => "Return",
        E::Event(_) => "Event",
        E::Asm(_) => "Asm",
        E::BindVariable(_) => "BindVariable",
        E::Assignment(_) => "Assignment",
        E::DropVariables(_) => "DropVariables",
        E::CompoundValue(_) => "CompoundValue",
        E::CellValue(_) => "CellValue",
        E::AssignCompoundItem(_) => "AssignCompoundItem",
        E::AssignCell(_) => "AssignCell",
        E::VariableCell(_) => "VariableCell",
        E::DropVariable(_) => "DropVariable",
        E::ThreadStart(_) => "ThreadStart",
        E::ThreadExit(_) => "ThreadExit",
        E::ThreadSwitch(_) => "ThreadSwitch",
        E::DropLastStep => "DropLastStep",
    }
}
