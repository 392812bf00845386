//! The streaming readers as Python sees them (`ct_recorder.trace_reader`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use runtime_tracing::{FullValueRecord, TraceLowLevelEvent, ValueRecord};

use super::reader::{End, EventReader, ReadError};

fn value_error(e: ReadError) -> PyErr {
    PyValueError::new_err(e.0)
}

/// Iterates over a trace's events in chunks: each item is a list of up to `chunk` events,
/// each event the Python object `json.loads` makes of the format's JSON (serde)
/// representation — a dict such as `{"Step": {"path_id": 0, "line": 3}}`. Records are
/// read and decoded with the GIL released; the frequent kinds (steps, values, calls,
/// returns) become dicts directly, with interned keys, and the rare ones go through
/// their JSON text. Python never holds more than a chunk. After the last chunk,
/// `complete` and `end_reason` tell whether the events file was closed by the recorder.
#[pyclass(module = "ct_recorder._native", unsendable)]
pub struct EventChunks {
    reader: EventReader,
    chunk: usize,
    decoded: Vec<TraceLowLevelEvent>,
    events: u64,
    /// Only events of these kinds (`"Call"`, `"Step"`…); all when `None`.
    kinds: Option<Vec<String>>,
    json_loads: Option<PyObject>,
}

#[pymethods]
impl EventChunks {
    #[new]
    #[pyo3(signature = (path, chunk = 4096, kinds = None))]
    fn new(path: PathBuf, chunk: usize, kinds: Option<Vec<String>>) -> PyResult<Self> {
        Ok(EventChunks {
            reader: EventReader::open(&path).map_err(value_error)?,
            chunk: chunk.max(1),
            decoded: Vec::new(),
            events: 0,
            kinds,
            json_loads: None,
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        let (reader, kinds, chunk) = (&mut self.reader, &self.kinds, self.chunk);
        let mut decoded = std::mem::take(&mut self.decoded);
        let read = py.allow_threads(|| -> Result<(), ReadError> {
            decoded.clear();
            while decoded.len() < chunk {
                let Some(kind) = reader.next_record()? else {
                    break;
                };
                // Events of other kinds are skipped without being decoded.
                if kinds.as_ref().is_some_and(|k| !k.iter().any(|k| k == kind)) {
                    continue;
                }
                decoded.push(reader.decode()?);
            }
            Ok(())
        });
        if let Err(e) = read {
            self.decoded = decoded;
            return Err(value_error(e));
        }
        if decoded.is_empty() {
            self.decoded = decoded;
            return Ok(None);
        }
        self.events += decoded.len() as u64;
        let mut items = Vec::with_capacity(decoded.len());
        for event in decoded.drain(..) {
            let obj = match event_to_py(py, &event)? {
                Some(obj) => obj,
                None => self.via_json(py, &event)?,
            };
            items.push(obj);
        }
        self.decoded = decoded;
        Ok(Some(PyList::new(py, items)?))
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

impl EventChunks {
    /// A rare kind: what `json.loads` makes of its serde JSON text.
    fn via_json<'py>(
        &mut self,
        py: Python<'py>,
        event: &TraceLowLevelEvent,
    ) -> PyResult<Bound<'py, PyAny>> {
        let text =
            serde_json::to_string(event).map_err(|e| PyValueError::new_err(e.to_string()))?;
        if self.json_loads.is_none() {
            self.json_loads = Some(py.import("json")?.getattr("loads")?.unbind());
        }
        let loads = self.json_loads.as_ref().expect("set above").bind(py);
        loads.call1((text,))
    }
}

/// `{kind: inner}`, as serde's externally tagged enums are in JSON.
fn tagged<'py>(
    py: Python<'py>,
    kind: &Bound<'py, PyString>,
    inner: Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    let d = PyDict::new(py);
    d.set_item(kind, inner)?;
    Ok(d.into_any())
}

/// The event as `json.loads` would make it from its JSON text, for the kinds the hot path
/// writes; `None` for the others (and for values this does not convert).
fn event_to_py<'py>(
    py: Python<'py>,
    event: &TraceLowLevelEvent,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(Some(match event {
        TraceLowLevelEvent::Step(s) => {
            let d = PyDict::new(py);
            d.set_item(intern!(py, "path_id"), s.path_id.0)?;
            d.set_item(intern!(py, "line"), s.line.0)?;
            tagged(py, intern!(py, "Step"), d)?
        }
        TraceLowLevelEvent::Value(v) => match full_value_to_py(py, v)? {
            Some(d) => tagged(py, intern!(py, "Value"), d)?,
            None => return Ok(None),
        },
        TraceLowLevelEvent::Call(c) => {
            let mut args = Vec::with_capacity(c.args.len());
            for a in &c.args {
                match full_value_to_py(py, a)? {
                    Some(d) => args.push(d),
                    None => return Ok(None),
                }
            }
            let d = PyDict::new(py);
            d.set_item(intern!(py, "function_id"), c.function_id.0)?;
            d.set_item(intern!(py, "args"), PyList::new(py, args)?)?;
            tagged(py, intern!(py, "Call"), d)?
        }
        TraceLowLevelEvent::Return(r) => match value_to_py(py, &r.return_value)? {
            Some(v) => {
                let d = PyDict::new(py);
                d.set_item(intern!(py, "return_value"), v)?;
                tagged(py, intern!(py, "Return"), d)?
            }
            None => return Ok(None),
        },
        _ => return Ok(None),
    }))
}

fn full_value_to_py<'py>(
    py: Python<'py>,
    v: &FullValueRecord,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    let Some(value) = value_to_py(py, &v.value)? else {
        return Ok(None);
    };
    let d = PyDict::new(py);
    d.set_item(intern!(py, "variable_id"), v.variable_id.0)?;
    d.set_item(intern!(py, "value"), value)?;
    Ok(Some(d))
}

/// A value record as `{"kind": …, fields…}` (serde's internally tagged form), for the
/// kinds the encoder writes; `None` for the rest.
fn value_to_py<'py>(py: Python<'py>, v: &ValueRecord) -> PyResult<Option<Bound<'py, PyDict>>> {
    let d = PyDict::new(py);
    let kind = intern!(py, "kind");
    let type_id = intern!(py, "type_id");
    match v {
        ValueRecord::Int { i, type_id: t } => {
            d.set_item(kind, intern!(py, "Int"))?;
            d.set_item(intern!(py, "i"), *i)?;
            d.set_item(type_id, t.0)?;
        }
        ValueRecord::None { type_id: t } => {
            d.set_item(kind, intern!(py, "None"))?;
            d.set_item(type_id, t.0)?;
        }
        ValueRecord::Bool { b, type_id: t } => {
            d.set_item(kind, intern!(py, "Bool"))?;
            d.set_item(intern!(py, "b"), *b)?;
            d.set_item(type_id, t.0)?;
        }
        // serde_json writes a non-finite float as null.
        ValueRecord::Float { f, type_id: t } => {
            d.set_item(kind, intern!(py, "Float"))?;
            if f.is_finite() {
                d.set_item(intern!(py, "f"), *f)?;
            } else {
                d.set_item(intern!(py, "f"), py.None())?;
            }
            d.set_item(type_id, t.0)?;
        }
        ValueRecord::String { text, type_id: t } => {
            d.set_item(kind, intern!(py, "String"))?;
            d.set_item(intern!(py, "text"), text)?;
            d.set_item(type_id, t.0)?;
        }
        ValueRecord::Raw { r, type_id: t } => {
            d.set_item(kind, intern!(py, "Raw"))?;
            d.set_item(intern!(py, "r"), r)?;
            d.set_item(type_id, t.0)?;
        }
        ValueRecord::Error { msg, type_id: t } => {
            d.set_item(kind, intern!(py, "Error"))?;
            d.set_item(intern!(py, "msg"), msg)?;
            d.set_item(type_id, t.0)?;
        }
        ValueRecord::Sequence {
            elements,
            is_slice,
            type_id: t,
        } => {
            d.set_item(kind, intern!(py, "Sequence"))?;
            let Some(items) = values_to_py(py, elements)? else {
                return Ok(None);
            };
            d.set_item(intern!(py, "elements"), items)?;
            d.set_item(intern!(py, "is_slice"), *is_slice)?;
            d.set_item(type_id, t.0)?;
        }
        ValueRecord::Tuple {
            elements,
            type_id: t,
        } => {
            d.set_item(kind, intern!(py, "Tuple"))?;
            let Some(items) = values_to_py(py, elements)? else {
                return Ok(None);
            };
            d.set_item(intern!(py, "elements"), items)?;
            d.set_item(type_id, t.0)?;
        }
        _ => return Ok(None),
    }
    Ok(Some(d))
}

fn values_to_py<'py>(
    py: Python<'py>,
    elements: &[ValueRecord],
) -> PyResult<Option<Bound<'py, PyList>>> {
    let mut out = Vec::with_capacity(elements.len());
    for e in elements {
        match value_to_py(py, e)? {
            Some(d) => out.push(d),
            None => return Ok(None),
        }
    }
    Ok(Some(PyList::new(py, out)?))
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
