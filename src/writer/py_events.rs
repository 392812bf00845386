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
    loads: Option<Py<PyAny>>,
}

impl Keys {
    pub fn new(py: Python<'_>) -> Keys {
        let s = |t: &str| PyString::intern(py, t).unbind();
        Keys {
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
            loads: None,
        }
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
    pub fn json_loads<'py>(&mut self, py: Python<'py>, text: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        let loads = match &self.loads {
            Some(f) => f.bind(py).clone(),
            None => {
                let f = py.import("json")?.getattr("loads")?;
                self.loads = Some(f.clone().unbind());
                f
            }
        };
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
        let first = *self.buf.get(self.at).ok_or(Fail::Unsupported)?;
        self.at += 1;
        let info = first & 0x1f;
        let arg = match info {
            0..=23 => info as u64,
            24..=27 => {
                let n = 1usize << (info - 24);
                let bytes = self
                    .buf
                    .get(self.at..self.at + n)
                    .ok_or(Fail::Unsupported)?;
                self.at += n;
                bytes.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64)
            }
            _ => return Err(Fail::Unsupported),
        };
        Ok((first >> 5, info, arg))
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
