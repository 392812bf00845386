//! Trace events as Python data, built in Rust straight from the decoded records.
//!
//! `ct_recorder.trace_reader` used to get each chunk of events as JSON text and call
//! `json.loads` on it, about a microsecond per event. Here the same objects (dicts with the
//! format's serde keys in serde's order, ints, floats, strings, lists, `None`) are made
//! directly:
//!
//! - a compact record ([`Rec`]): steps, arguments, calls and returns with scalar values by
//!   hand; anything else (interning records, thread switches, non-scalar values) through
//!   its CBOR encoding and the CBOR builder below;
//! - a binary v1 record: a CBOR item, turned into Python data item by item (the CBOR that
//!   serde writes has exactly the structure of the JSON that serde writes);
//! - a JSON event: parsed by a small JSON parser of our own.
//!
//! Map keys are made once per reader and reused. Whatever a builder does not handle (a
//! CBOR tag, a number Python would read as a big int, a lone surrogate escape…) falls back,
//! for that record only, to the JSON text and Python's `json.loads`, so the result is the
//! same Python data the JSON path gives in every case. A non-finite float, which
//! `serde_json` writes as `null`, is `None` here too.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyList, PyString};
use rustc_hash::FxHashMap;

use runtime_tracing::TraceLowLevelEvent;

use super::reader::cbor_head;
use super::record::Val;

/// Nesting deeper than this goes to the fallback (which raises or copes as `json` does).
const MAX_DEPTH: u32 = 256;

/// Why a builder gave up on a record.
pub enum Fail {
    /// A shape this builder does not make: use the JSON text path for this record.
    Unsupported,
    Py(PyErr),
}

impl From<std::convert::Infallible> for Fail {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

impl From<PyErr> for Fail {
    fn from(e: PyErr) -> Self {
        Fail::Py(e)
    }
}

type Built<'py> = Result<Bound<'py, PyAny>, Fail>;

/// The Python strings of one reader: the fixed keys of the frequent records, and every map
/// key met since (the format has a few dozen).
pub struct Keys {
    step: Py<PyString>,
    path_id: Py<PyString>,
    line: Py<PyString>,
    value_event: Py<PyString>,
    variable_id: Py<PyString>,
    value: Py<PyString>,
    call: Py<PyString>,
    function_id: Py<PyString>,
    args: Py<PyString>,
    return_event: Py<PyString>,
    return_value: Py<PyString>,
    kind: Py<PyString>,
    int: Py<PyString>,
    i: Py<PyString>,
    type_id: Py<PyString>,
    none: Py<PyString>,
    bool_: Py<PyString>,
    b: Py<PyString>,
    float: Py<PyString>,
    f: Py<PyString>,
    /// Map keys of the generic builders, and the `kind` names of values.
    names: FxHashMap<Box<[u8]>, Py<PyString>>,
    /// `json.loads`, for the fallback.
    loads: Py<PyAny>,
}

impl Keys {
    pub fn new(py: Python<'_>) -> PyResult<Keys> {
        let s = |t: &str| PyString::intern(py, t).unbind();
        Ok(Keys {
            step: s("Step"),
            path_id: s("path_id"),
            line: s("line"),
            value_event: s("Value"),
            variable_id: s("variable_id"),
            value: s("value"),
            call: s("Call"),
            function_id: s("function_id"),
            args: s("args"),
            return_event: s("Return"),
            return_value: s("return_value"),
            kind: s("kind"),
            int: s("Int"),
            i: s("i"),
            type_id: s("type_id"),
            none: s("None"),
            bool_: s("Bool"),
            b: s("b"),
            float: s("Float"),
            f: s("f"),
            names: FxHashMap::default(),
            // Looked up now, not in the middle of a chunk: `build` runs no Python code.
            loads: py.import("json")?.getattr("loads")?.unbind(),
        })
    }

    /// The Python string of a map key (or a value's kind), made once.
    fn name<'py>(&mut self, py: Python<'py>, text: &[u8]) -> Result<Bound<'py, PyString>, Fail> {
        if let Some(s) = self.names.get(text) {
            return Ok(s.bind(py).clone());
        }
        let s = PyString::new(
            py,
            std::str::from_utf8(text).map_err(|_| Fail::Unsupported)?,
        );
        if self.names.len() < 4096 {
            self.names.insert(text.into(), s.clone().unbind());
        }
        Ok(s)
    }

    /// `json.loads(text)`: the fallback for what the builders do not make.
    pub fn json_loads<'py>(&self, py: Python<'py>, text: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        let loads = self.loads.bind(py);
        let text = std::str::from_utf8(text).map_err(|_| {
            pyo3::exceptions::PyValueError::new_err("the events file is not valid UTF-8")
        })?;
        loads.call1((text,))
    }
}

/// `{key: value}`.
#[inline]
fn one<'py>(
    py: Python<'py>,
    key: &Py<PyString>,
    value: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let d = PyDict::new(py);
    d.set_item(key.bind(py), value)?;
    Ok(d.into_any())
}

/// `{"Step": {"path_id": path, "line": line}}`.
pub fn step<'py>(py: Python<'py>, k: &Keys, path: u32, line: i64) -> PyResult<Bound<'py, PyAny>> {
    let d = PyDict::new(py);
    d.set_item(k.path_id.bind(py), path)?;
    d.set_item(k.line.bind(py), line)?;
    one(py, &k.step, d.into_any())
}

/// `{"variable_id": variable, "value": {...}}` (a `FullValueRecord`).
pub fn full_value<'py>(py: Python<'py>, k: &mut Keys, variable: u32, value: &Val) -> Built<'py> {
    let d = PyDict::new(py);
    d.set_item(k.variable_id.bind(py), variable)?;
    let v = val(py, k, value)?;
    d.set_item(k.value.bind(py), v)?;
    Ok(d.into_any())
}

/// `{"Value": {"variable_id": …, "value": …}}`.
pub fn value_event<'py>(py: Python<'py>, k: &mut Keys, variable: u32, value: &Val) -> Built<'py> {
    let v = full_value(py, k, variable, value)?;
    Ok(one(py, &k.value_event, v)?)
}

/// `{"Call": {"function_id": function, "args": [...]}}`.
pub fn call<'py>(py: Python<'py>, k: &mut Keys, function: u32, args: &[(u32, Val)]) -> Built<'py> {
    let mut items = Vec::with_capacity(args.len());
    for (variable, value) in args {
        items.push(full_value(py, k, *variable, value)?);
    }
    let d = PyDict::new(py);
    d.set_item(k.function_id.bind(py), function)?;
    d.set_item(k.args.bind(py), PyList::new(py, items)?)?;
    Ok(one(py, &k.call, d.into_any())?)
}

/// `{"Return": {"return_value": …}}`.
pub fn return_event<'py>(py: Python<'py>, k: &mut Keys, value: &Val) -> Built<'py> {
    let v = val(py, k, value)?;
    let d = PyDict::new(py);
    d.set_item(k.return_value.bind(py), v)?;
    Ok(one(py, &k.return_event, d.into_any())?)
}

/// A float as `json.loads` of serde's text gives it: non-finite ones are written `null`.
#[inline]
fn float(py: Python<'_>, f: f64) -> Bound<'_, PyAny> {
    if f.is_finite() {
        PyFloat::new(py, f).into_any()
    } else {
        py.None().into_bound(py)
    }
}

/// A value record (internally tagged: `{"kind": …, fields…}`, serde's field order).
fn val<'py>(py: Python<'py>, k: &mut Keys, v: &Val) -> Built<'py> {
    let d = PyDict::new(py);
    let type_id = match v {
        Val::Int { type_id, i } => {
            d.set_item(k.kind.bind(py), k.int.bind(py))?;
            d.set_item(k.i.bind(py), *i)?;
            *type_id
        }
        Val::None { type_id } => {
            d.set_item(k.kind.bind(py), k.none.bind(py))?;
            *type_id
        }
        Val::Bool { type_id, b } => {
            d.set_item(k.kind.bind(py), k.bool_.bind(py))?;
            d.set_item(k.b.bind(py), *b)?;
            *type_id
        }
        Val::Float { type_id, f } => {
            d.set_item(k.kind.bind(py), k.float.bind(py))?;
            d.set_item(k.f.bind(py), float(py, *f))?;
            *type_id
        }
        Val::Other(record) => {
            let cbor =
                cbor4ii::serde::to_vec(Vec::new(), &**record).map_err(|_| Fail::Unsupported)?;
            return cbor_item(py, k, &cbor);
        }
    };
    d.set_item(k.type_id.bind(py), type_id)?;
    Ok(d.into_any())
}

/// Any other event of a compact file (interning records, thread switches, …): rare, made
/// from its CBOR encoding.
pub fn event<'py>(
    py: Python<'py>,
    k: &mut Keys,
    event: &TraceLowLevelEvent,
) -> PyResult<Bound<'py, PyAny>> {
    let built = cbor4ii::serde::to_vec(Vec::new(), event)
        .map_err(|_| Fail::Unsupported)
        .and_then(|cbor| cbor_item(py, k, &cbor));
    match built {
        Ok(obj) => Ok(obj),
        Err(Fail::Py(e)) => Err(e),
        Err(Fail::Unsupported) => {
            let text = serde_json::to_vec(event)
                .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
            k.json_loads(py, &text)
        }
    }
}

/// The kind of an event (its serde variant name).
pub fn kind_of(event: &TraceLowLevelEvent) -> &'static str {
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

/// One whole CBOR item (as serde writes the format's types) as Python data.
pub fn cbor_item<'py>(py: Python<'py>, k: &mut Keys, buf: &[u8]) -> Built<'py> {
    let mut c = CborIn { buf, at: 0 };
    let obj = c.item(py, k, 0)?;
    if c.at != buf.len() {
        return Err(Fail::Unsupported);
    }
    Ok(obj)
}

struct CborIn<'a> {
    buf: &'a [u8],
    at: usize,
}

impl CborIn<'_> {
    #[inline]
    fn head(&mut self) -> Result<(u8, u8, u64), Fail> {
        let (major, info, arg, next) = cbor_head(self.buf, self.at).ok_or(Fail::Unsupported)?;
        self.at = next;
        Ok((major, info, arg))
    }

    #[inline]
    fn text(&mut self, len: u64) -> Result<&[u8], Fail> {
        let len = usize::try_from(len).map_err(|_| Fail::Unsupported)?;
        let end = self.at.checked_add(len).ok_or(Fail::Unsupported)?;
        let s = self.buf.get(self.at..end).ok_or(Fail::Unsupported)?;
        self.at = end;
        Ok(s)
    }

    fn item<'py>(&mut self, py: Python<'py>, k: &mut Keys, depth: u32) -> Built<'py> {
        if depth > MAX_DEPTH {
            return Err(Fail::Unsupported);
        }
        let (major, info, arg) = self.head()?;
        Ok(match major {
            0 => arg.into_pyobject(py)?.into_any(),
            1 => {
                let n = i64::try_from(arg).map_err(|_| Fail::Unsupported)?;
                (-1 - n).into_pyobject(py)?.into_any()
            }
            3 => {
                let text = self.text(arg)?;
                let text = std::str::from_utf8(text).map_err(|_| Fail::Unsupported)?;
                PyString::new(py, text).into_any()
            }
            4 => {
                let n = usize::try_from(arg).map_err(|_| Fail::Unsupported)?;
                let mut items = Vec::with_capacity(n.min(1 << 12));
                for _ in 0..n {
                    items.push(self.item(py, k, depth + 1)?);
                }
                PyList::new(py, items)?.into_any()
            }
            5 => {
                let d = PyDict::new(py);
                for _ in 0..arg {
                    let (kmajor, _, klen) = self.head()?;
                    if kmajor != 3 {
                        return Err(Fail::Unsupported);
                    }
                    let key_text = self.text(klen)?;
                    let key = k.name(py, key_text)?;
                    // A value's kind is one of a few names: share them too.
                    let value = if key_text == b"kind"
                        && self.buf.get(self.at).is_some_and(|b| b >> 5 == 3)
                    {
                        let (_, _, len) = self.head()?;
                        let t = self.text(len)?;
                        k.name(py, t)?.into_any()
                    } else {
                        self.item(py, k, depth + 1)?
                    };
                    d.set_item(key, value)?;
                }
                d.into_any()
            }
            7 => match info {
                20 => false.into_pyobject(py)?.to_owned().into_any(),
                21 => true.into_pyobject(py)?.to_owned().into_any(),
                22 => py.None().into_bound(py),
                25 => float(py, f16_to_f64(arg as u16)),
                26 => float(py, f32::from_bits(arg as u32) as f64),
                27 => float(py, f64::from_bits(arg)),
                _ => return Err(Fail::Unsupported),
            },
            // Byte strings, tags: serde does not write them for this format.
            _ => return Err(Fail::Unsupported),
        })
    }
}

/// An IEEE half-precision float (CBOR's shortest float form).
fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f64;
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

/// One whole JSON value (an event of a JSON events file) as Python data, as `json.loads`
/// makes it.
pub fn json_item<'py>(py: Python<'py>, k: &mut Keys, buf: &[u8]) -> Built<'py> {
    let mut j = JsonIn {
        buf,
        at: 0,
        scratch: String::new(),
    };
    let obj = j.value(py, k, 0)?;
    j.ws();
    if j.at != buf.len() {
        return Err(Fail::Unsupported);
    }
    Ok(obj)
}

struct JsonIn<'a> {
    buf: &'a [u8],
    at: usize,
    scratch: String,
}

impl JsonIn<'_> {
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.buf.get(self.at) {
            self.at += 1;
        }
    }

    #[inline]
    fn peek(&mut self) -> Result<u8, Fail> {
        self.ws();
        self.buf.get(self.at).copied().ok_or(Fail::Unsupported)
    }

    #[inline]
    fn expect(&mut self, b: u8) -> Result<(), Fail> {
        if self.peek()? != b {
            return Err(Fail::Unsupported);
        }
        self.at += 1;
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Fail> {
        if self.buf.get(self.at..self.at + word.len()) != Some(word) {
            return Err(Fail::Unsupported);
        }
        self.at += word.len();
        Ok(())
    }

    /// The string starting at the opening quote: the raw bytes when it has no escapes,
    /// else the decoded text in `scratch` (`None` returned).
    fn string(&mut self) -> Result<Option<(usize, usize)>, Fail> {
        self.at += 1; // the quote
        let start = self.at;
        loop {
            let b = *self.buf.get(self.at).ok_or(Fail::Unsupported)?;
            match b {
                b'"' => {
                    self.at += 1;
                    return Ok(Some((start, self.at - 1)));
                }
                b'\\' => break,
                // Raw control characters: `json.loads` rejects them; let it say so.
                0..=0x1f => return Err(Fail::Unsupported),
                _ => self.at += 1,
            }
        }
        let plain =
            std::str::from_utf8(&self.buf[start..self.at]).map_err(|_| Fail::Unsupported)?;
        self.scratch.clear();
        self.scratch.push_str(plain);
        loop {
            let b = *self.buf.get(self.at).ok_or(Fail::Unsupported)?;
            self.at += 1;
            match b {
                b'"' => return Ok(None),
                b'\\' => {
                    let e = *self.buf.get(self.at).ok_or(Fail::Unsupported)?;
                    self.at += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            if (0xD800..0xDC00).contains(&hi) {
                                // A surrogate pair; a lone surrogate (which Python keeps
                                // as is) goes to the fallback.
                                if self.buf.get(self.at..self.at + 2) != Some(b"\\u") {
                                    return Err(Fail::Unsupported);
                                }
                                self.at += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(Fail::Unsupported);
                                }
                                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                                char::from_u32(c).ok_or(Fail::Unsupported)?
                            } else {
                                char::from_u32(hi).ok_or(Fail::Unsupported)?
                            }
                        }
                        _ => return Err(Fail::Unsupported),
                    };
                    self.scratch.push(c);
                }
                0..=0x1f => return Err(Fail::Unsupported),
                _ => {
                    // A run of plain bytes up to the next quote or escape.
                    let from = self.at - 1;
                    while let Some(&b) = self.buf.get(self.at) {
                        if b == b'"' || b == b'\\' || b < 0x20 {
                            break;
                        }
                        self.at += 1;
                    }
                    let s = std::str::from_utf8(&self.buf[from..self.at])
                        .map_err(|_| Fail::Unsupported)?;
                    self.scratch.push_str(s);
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, Fail> {
        let h = self
            .buf
            .get(self.at..self.at + 4)
            .ok_or(Fail::Unsupported)?;
        let h = std::str::from_utf8(h).map_err(|_| Fail::Unsupported)?;
        let v = u32::from_str_radix(h, 16).map_err(|_| Fail::Unsupported)?;
        if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Fail::Unsupported);
        }
        self.at += 4;
        Ok(v)
    }

    fn number<'py>(&mut self, py: Python<'py>) -> Built<'py> {
        let start = self.at;
        if self.buf.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        let digits = |s: &mut Self| {
            let from = s.at;
            while s.buf.get(s.at).is_some_and(u8::is_ascii_digit) {
                s.at += 1;
            }
            s.at - from
        };
        let int_digits = digits(self);
        if int_digits == 0 || (int_digits > 1 && self.buf[self.at - int_digits] == b'0') {
            return Err(Fail::Unsupported);
        }
        let mut is_float = false;
        if self.buf.get(self.at) == Some(&b'.') {
            self.at += 1;
            if digits(self) == 0 {
                return Err(Fail::Unsupported);
            }
            is_float = true;
        }
        if let Some(b'e' | b'E') = self.buf.get(self.at) {
            self.at += 1;
            if let Some(b'+' | b'-') = self.buf.get(self.at) {
                self.at += 1;
            }
            if digits(self) == 0 {
                return Err(Fail::Unsupported);
            }
            is_float = true;
        }
        // ASCII by construction.
        let text = std::str::from_utf8(&self.buf[start..self.at]).map_err(|_| Fail::Unsupported)?;
        if is_float {
            let f: f64 = text.parse().map_err(|_| Fail::Unsupported)?;
            return Ok(PyFloat::new(py, f).into_any());
        }
        if let Ok(i) = text.parse::<i64>() {
            return Ok(i.into_pyobject(py)?.into_any());
        }
        if let Ok(u) = text.parse::<u64>() {
            return Ok(u.into_pyobject(py)?.into_any());
        }
        // Wider: Python makes a big int; so does the fallback.
        Err(Fail::Unsupported)
    }

    fn value<'py>(&mut self, py: Python<'py>, k: &mut Keys, depth: u32) -> Built<'py> {
        if depth > MAX_DEPTH {
            return Err(Fail::Unsupported);
        }
        Ok(match self.peek()? {
            b'{' => {
                self.at += 1;
                let d = PyDict::new(py);
                if self.peek()? == b'}' {
                    self.at += 1;
                    return Ok(d.into_any());
                }
                loop {
                    if self.peek()? != b'"' {
                        return Err(Fail::Unsupported);
                    }
                    let (key, is_kind) = match self.string()? {
                        Some((s, e)) => (k.name(py, &self.buf[s..e])?, &self.buf[s..e] == b"kind"),
                        None => (PyString::new(py, &self.scratch), false),
                    };
                    self.expect(b':')?;
                    let value = if is_kind && self.peek()? == b'"' {
                        match self.string()? {
                            Some((s, e)) => k.name(py, &self.buf[s..e])?.into_any(),
                            None => PyString::new(py, &self.scratch).into_any(),
                        }
                    } else {
                        self.value(py, k, depth + 1)?
                    };
                    d.set_item(key, value)?;
                    match self.peek()? {
                        b',' => self.at += 1,
                        b'}' => {
                            self.at += 1;
                            break;
                        }
                        _ => return Err(Fail::Unsupported),
                    }
                }
                d.into_any()
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                if self.peek()? == b']' {
                    self.at += 1;
                } else {
                    loop {
                        items.push(self.value(py, k, depth + 1)?);
                        match self.peek()? {
                            b',' => self.at += 1,
                            b']' => {
                                self.at += 1;
                                break;
                            }
                            _ => return Err(Fail::Unsupported),
                        }
                    }
                }
                PyList::new(py, items)?.into_any()
            }
            b'"' => match self.string()? {
                Some((s, e)) => {
                    let text =
                        std::str::from_utf8(&self.buf[s..e]).map_err(|_| Fail::Unsupported)?;
                    PyString::new(py, text).into_any()
                }
                None => PyString::new(py, &self.scratch).into_any(),
            },
            b't' => {
                self.literal(b"true")?;
                true.into_pyobject(py)?.to_owned().into_any()
            }
            b'f' => {
                self.literal(b"false")?;
                false.into_pyobject(py)?.to_owned().into_any()
            }
            b'n' => {
                self.literal(b"null")?;
                py.None().into_bound(py)
            }
            b'-' | b'0'..=b'9' => self.number(py)?,
            // NaN, Infinity (which `json.loads` accepts) and anything else.
            _ => return Err(Fail::Unsupported),
        })
    }
}

/// A frequent record of a binary or JSON file, read by its exact bytes (as serde and our
/// hand-written encoders write it): a step, or a value, call or return whose values are
/// ints, `None`, bools or (binary) floats. A `Call`'s arguments are left in the `args`
/// passed to the reader. Anything else is `None`, for the generic builders.
pub enum Fast {
    Step { path: u32, line: i64 },
    Value { variable: u32, value: Val },
    Call { function: u32 },
    Return(Val),
}

struct Exact<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Exact<'_> {
    #[inline]
    fn lit(&mut self, s: &[u8]) -> Option<()> {
        if self.buf.get(self.at..self.at + s.len())? != s {
            return None;
        }
        self.at += s.len();
        Some(())
    }

    #[inline]
    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    // --- CBOR ---

    /// A CBOR head of major type `major`: its argument.
    #[inline]
    fn cbor_arg(&mut self, major: u8) -> Option<u64> {
        let (m, _, arg, next) = cbor_head(self.buf, self.at)?;
        if m != major {
            return None;
        }
        self.at = next;
        Some(arg)
    }

    #[inline]
    fn cbor_u32(&mut self) -> Option<u32> {
        u32::try_from(self.cbor_arg(0)?).ok()
    }

    #[inline]
    fn cbor_int(&mut self) -> Option<i64> {
        match self.buf.get(self.at)? >> 5 {
            0 => i64::try_from(self.cbor_arg(0)?).ok(),
            1 => Some(-1 - i64::try_from(self.cbor_arg(1)?).ok()?),
            _ => None,
        }
    }

    fn cbor_value(&mut self) -> Option<Val> {
        let value = if self.lit(b"\xa3\x64kind\x63Int\x61i").is_some() {
            let i = self.cbor_int()?;
            self.lit(b"\x67type_id")?;
            Val::Int {
                i,
                type_id: self.cbor_u32()?,
            }
        } else if self.lit(b"\xa2\x64kind\x64None\x67type_id").is_some() {
            Val::None {
                type_id: self.cbor_u32()?,
            }
        } else if self.lit(b"\xa3\x64kind\x64Bool\x61b").is_some() {
            let b = match self.byte()? {
                0xf4 => false,
                0xf5 => true,
                _ => return None,
            };
            self.lit(b"\x67type_id")?;
            Val::Bool {
                b,
                type_id: self.cbor_u32()?,
            }
        } else {
            self.lit(b"\xa3\x64kind\x65Float\x61f\xfb")?;
            let raw = self.buf.get(self.at..self.at + 8)?;
            self.at += 8;
            let f = f64::from_be_bytes(raw.try_into().ok()?);
            self.lit(b"\x67type_id")?;
            Val::Float {
                f,
                type_id: self.cbor_u32()?,
            }
        };
        Some(value)
    }

    fn cbor_full_value(&mut self) -> Option<(u32, Val)> {
        self.lit(b"\xa2\x6bvariable_id")?;
        let variable = self.cbor_u32()?;
        self.lit(b"\x65value")?;
        Some((variable, self.cbor_value()?))
    }

    // --- JSON (serde_json's compact layout) ---

    #[inline]
    fn json_int(&mut self) -> Option<i64> {
        let negative = self.buf.get(self.at) == Some(&b'-');
        if negative {
            self.at += 1;
        }
        let from = self.at;
        let mut v: i64 = 0;
        while let Some(&d) = self.buf.get(self.at) {
            if !d.is_ascii_digit() {
                break;
            }
            let d = (d - b'0') as i64;
            v = v.checked_mul(10).and_then(|v| {
                if negative {
                    v.checked_sub(d)
                } else {
                    v.checked_add(d)
                }
            })?;
            self.at += 1;
        }
        let n = self.at - from;
        // No digits, a leading zero, or a float: the generic parser decides.
        if n == 0 || (n > 1 && self.buf[from] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.buf.get(self.at) {
            return None;
        }
        Some(v)
    }

    #[inline]
    fn json_u32(&mut self) -> Option<u32> {
        u32::try_from(self.json_int()?).ok()
    }

    fn json_value(&mut self) -> Option<Val> {
        let value = if self.lit(b"{\"kind\":\"Int\",\"i\":").is_some() {
            let i = self.json_int()?;
            self.lit(b",\"type_id\":")?;
            Val::Int {
                i,
                type_id: self.json_u32()?,
            }
        } else if self.lit(b"{\"kind\":\"None\",\"type_id\":").is_some() {
            Val::None {
                type_id: self.json_u32()?,
            }
        } else {
            self.lit(b"{\"kind\":\"Bool\",\"b\":")?;
            let b = if self.lit(b"true").is_some() {
                true
            } else {
                self.lit(b"false")?;
                false
            };
            self.lit(b",\"type_id\":")?;
            Val::Bool {
                b,
                type_id: self.json_u32()?,
            }
        };
        self.lit(b"}")?;
        Some(value)
    }

    fn json_full_value(&mut self) -> Option<(u32, Val)> {
        self.lit(b"{\"variable_id\":")?;
        let variable = self.json_u32()?;
        self.lit(b",\"value\":")?;
        let value = self.json_value()?;
        self.lit(b"}")?;
        Some((variable, value))
    }
}

/// A binary v1 record (one CBOR item) of a frequent shape.
pub fn cbor_fast(buf: &[u8], args: &mut Vec<(u32, Val)>) -> Option<Fast> {
    cbor_fast_prefix(buf, args).and_then(|(fast, len)| (len == buf.len()).then_some(fast))
}

/// A binary v1 record of a frequent shape at the start of `buf`, and its length. CBOR
/// items have definite lengths here, so what this reads is the whole item: the same
/// record [`cbor_fast`] reads once the item's end is found. `None` when `buf` stops
/// inside it (or it is of another shape).
pub fn cbor_fast_prefix(buf: &[u8], args: &mut Vec<(u32, Val)>) -> Option<(Fast, usize)> {
    let mut c = Exact { buf, at: 0 };
    let fast = if c.lit(b"\xa1\x64Step\xa2\x67path_id").is_some() {
        let path = c.cbor_u32()?;
        c.lit(b"\x64line")?;
        Fast::Step {
            path,
            line: c.cbor_int()?,
        }
    } else if c.lit(b"\xa1\x65Value").is_some() {
        let (variable, value) = c.cbor_full_value()?;
        Fast::Value { variable, value }
    } else if c.lit(b"\xa1\x64Call\xa2\x6bfunction_id").is_some() {
        let function = c.cbor_u32()?;
        c.lit(b"\x64args")?;
        let n = c.cbor_arg(4)?;
        args.clear();
        for _ in 0..n {
            args.push(c.cbor_full_value()?);
        }
        Fast::Call { function }
    } else {
        c.lit(b"\xa1\x66Return\xa1\x6creturn_value")?;
        Fast::Return(c.cbor_value()?)
    };
    Some((fast, c.at))
}

/// A JSON event of a frequent shape, in serde_json's compact layout (what the recorder
/// writes; other layouts go to the generic parser).
pub fn json_fast(buf: &[u8], args: &mut Vec<(u32, Val)>) -> Option<Fast> {
    json_fast_prefix(buf, args).and_then(|(fast, len)| (len == buf.len()).then_some(fast))
}

/// A JSON event of a frequent shape at the start of `buf`, and its length: what
/// [`json_fast`] reads once the element's end is found, read without looking for it. The
/// shapes hold no strings that need escaping and end with the outer object's `}`, so the
/// bytes read are exactly the array element a scan for its end would find. `None` when
/// `buf` stops inside it (every shape ends with a literal, so a number cut by the end of
/// `buf` is never taken for a whole one) or it is of another shape.
pub fn json_fast_prefix(buf: &[u8], args: &mut Vec<(u32, Val)>) -> Option<(Fast, usize)> {
    let mut c = Exact { buf, at: 0 };
    let fast = if c.lit(b"{\"Step\":{\"path_id\":").is_some() {
        let path = c.json_u32()?;
        c.lit(b",\"line\":")?;
        let line = c.json_int()?;
        c.lit(b"}")?;
        Fast::Step { path, line }
    } else if c.lit(b"{\"Value\":").is_some() {
        let (variable, value) = c.json_full_value()?;
        Fast::Value { variable, value }
    } else if c.lit(b"{\"Call\":{\"function_id\":").is_some() {
        let function = c.json_u32()?;
        c.lit(b",\"args\":[")?;
        args.clear();
        if c.lit(b"]").is_none() {
            loop {
                args.push(c.json_full_value()?);
                if c.lit(b",").is_none() {
                    c.lit(b"]")?;
                    break;
                }
            }
        }
        c.lit(b"}")?;
        Fast::Call { function }
    } else {
        c.lit(b"{\"Return\":{\"return_value\":")?;
        let value = c.json_value()?;
        c.lit(b"}")?;
        Fast::Return(value)
    };
    c.lit(b"}")?;
    Some((fast, c.at))
}

/// The Python data of a [`Fast`] record.
pub fn fast<'py>(py: Python<'py>, k: &mut Keys, rec: &Fast, args: &[(u32, Val)]) -> Built<'py> {
    match rec {
        Fast::Step { path, line } => Ok(step(py, k, *path, *line)?),
        Fast::Value { variable, value } => value_event(py, k, *variable, value),
        Fast::Call { function } => call(py, k, *function, args),
        Fast::Return(value) => return_event(py, k, value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::record::{Rec, RecordEncoder};

    fn scalars() -> Vec<Val> {
        let mut v = Vec::new();
        for i in [
            0,
            1,
            23,
            24,
            255,
            256,
            65536,
            -1,
            -24,
            -25,
            -257,
            i64::MAX,
            i64::MIN,
        ] {
            v.push(Val::Int { type_id: 1, i });
        }
        v.push(Val::Int {
            type_id: u32::MAX,
            i: 5,
        });
        v.push(Val::None { type_id: 300 });
        v.push(Val::Bool {
            type_id: 2,
            b: true,
        });
        v.push(Val::Bool {
            type_id: 2,
            b: false,
        });
        v.push(Val::Float {
            type_id: 3,
            f: -2.5e300,
        });
        v
    }

    fn same(a: &Val, b: &Val) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    /// Every frequent record, as the writers encode it (the hand-written encoders, which
    /// write exactly serde's bytes), is read by the exact-bytes fast paths, with its values;
    /// so the fast paths are what the reader takes on the recorder's own files. (JSON
    /// floats are left to the generic parser.)
    #[test]
    fn the_fast_paths_read_what_the_writers_write() {
        for value in scalars() {
            let is_float = matches!(value, Val::Float { .. });
            let recs = [
                Rec::Step {
                    path: 7,
                    line: value_int(&value),
                },
                Rec::Arg {
                    variable: 4,
                    value: value.clone(),
                },
                Rec::Arg {
                    variable: 70_000,
                    value: value.clone(),
                },
                Rec::Call {
                    function: 9,
                    nargs: 2,
                },
                Rec::Return(value.clone()),
            ];
            let (mut cbor, mut json) = (RecordEncoder::new(), RecordEncoder::new());
            for rec in &recs {
                let (mut c, mut j) = (Vec::new(), Vec::new());
                cbor.cbor(&mut c, rec).unwrap();
                json.json(&mut j, rec).unwrap();
                let mut args = Vec::new();
                for (is_json, bytes) in [(false, &c), (true, &j)] {
                    let got = if is_json {
                        json_fast(bytes, &mut args)
                    } else {
                        cbor_fast(bytes, &mut args)
                    };
                    if is_json && is_float && !matches!(rec, Rec::Step { .. }) {
                        assert!(got.is_none());
                        continue;
                    }
                    let text = String::from_utf8_lossy(bytes).into_owned();
                    match (rec, got.unwrap_or_else(|| panic!("not read: {text}"))) {
                        (Rec::Step { path, line }, Fast::Step { path: p, line: l }) => {
                            assert_eq!((*path, *line), (p, l))
                        }
                        (
                            Rec::Arg { variable, value },
                            Fast::Value {
                                variable: v,
                                value: w,
                            },
                        ) => {
                            assert!(*variable == v && same(value, &w), "{text}")
                        }
                        (Rec::Call { function, .. }, Fast::Call { function: f }) => {
                            assert_eq!(*function, f);
                            assert_eq!(args.len(), 2, "{text}");
                            assert_eq!((args[0].0, args[1].0), (4, 70_000));
                            assert!(args.iter().all(|(_, w)| same(&value, w)), "{text}");
                        }
                        (Rec::Return(value), Fast::Return(w)) => assert!(same(value, &w), "{text}"),
                        _ => panic!("read as another record: {text}"),
                    }
                }
            }
        }
    }

    fn value_int(v: &Val) -> i64 {
        match v {
            Val::Int { i, .. } => *i,
            _ => 3,
        }
    }

    #[test]
    fn other_bytes_are_left_to_the_generic_builders() {
        let mut args = Vec::new();
        for text in [
            &b"{\"Step\":{\"path_id\":01,\"line\":1}}"[..],
            b"{\"Step\":{\"path_id\":1,\"line\":1.0}}",
            b"{\"Step\": {\"path_id\":1,\"line\":1}}",
            b"{\"Step\":{\"path_id\":1,\"line\":1}}x",
            b"{\"Step\":{\"path_id\":1,\"line\":99999999999999999999}}",
            b"{\"Step\":{\"path_id\":4294967296,\"line\":1}}",
            b"{\"Return\":{\"return_value\":{\"kind\":\"String\",\"text\":\"a\",\"type_id\":1}}}",
            b"\"DropLastStep\"",
        ] {
            assert!(
                json_fast(text, &mut args).is_none(),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        // A step whose line is a CBOR float, and one cut short.
        let mut step = b"\xa1\x64Step\xa2\x67path_id\x01\x64line".to_vec();
        assert!(cbor_fast(&step, &mut args).is_none());
        step.push(0xf9);
        step.extend([0, 0]);
        assert!(cbor_fast(&step, &mut args).is_none());
    }
}
