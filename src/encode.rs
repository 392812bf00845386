//! Value encoding: Python objects to `runtime_tracing` value records.
//!
//! Builtins are encoded structurally (int, float, bool, None, str, bytes, list, tuple,
//! dict, set, frozenset, and their subclasses through the base type's storage), bounded
//! in string length, item count and depth. Everything else is recorded by type and a
//! bounded repr — but only for types implemented in C: the recorder never calls a
//! `__repr__` written in Python, because running user code from inside a trace hook can
//! change what the program does (lazy loaders, ORMs, reprs with side effects). Objects of
//! Python-defined classes are recorded as `<Type object at 0x…>`, the default repr,
//! computed without calling into the object.
//!
//! The encoder never raises into the program: every failed read becomes an `Error`
//! record and the Python error indicator is cleared.

use std::ffi::CStr;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString, PyTuple};
use runtime_tracing::{TypeId, TypeKind, ValueRecord, NONE_TYPE_ID};

use crate::writer::record::Val;
use crate::writer::{TraceBuilder, ValueTo, HOT_BOOL, HOT_FLOAT, HOT_INT};

/// Bounds on what one value may cost to record.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest string (in characters) recorded before truncation.
    pub max_str: usize,
    /// Most items recorded per container.
    pub max_items: usize,
    /// Deepest container nesting recorded; deeper values are summarised.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_str: 512,
            max_items: 32,
            max_depth: 4,
        }
    }
}

pub struct Encoder {
    limits: Limits,
    /// One-digit `int`s are read in place (the layout checked at start).
    small_int_inline: bool,
}

impl Encoder {
    /// Whether one-digit `int`s are read in place (their layout check passed).
    pub fn small_int_inline(&self) -> bool {
        self.small_int_inline
    }

    pub fn new(_py: Python<'_>, limits: Limits) -> Self {
        Encoder {
            limits,
            // SAFETY: the GIL is held (`_py`).
            small_int_inline: unsafe { crate::tracer::ffi::small_int_layout_ok() },
        }
    }

    pub fn none() -> ValueRecord {
        ValueRecord::None {
            type_id: NONE_TYPE_ID,
        }
    }

    /// Encodes `obj`. Never fails and never leaves a Python error set.
    pub fn encode(&self, b: &mut TraceBuilder, obj: &Bound<'_, PyAny>) -> ValueRecord {
        let v = self.encode_at(b, obj, 0);
        // SAFETY: the GIL is held (we have a `Bound`).
        if unsafe { !ffi::PyErr_Occurred().is_null() } {
            unsafe { ffi::PyErr_Clear() };
        }
        v
    }

    /// Encodes the object at `obj` (a borrowed, live object) as the hot path stores it, and
    /// appends it as `to` says. The scalars most values are (exactly `None`, `bool`, an
    /// `int` that fits 64 bits, a finite `float`) are read in place, with their type ids
    /// cached in the builder: no hashing, no allocation, no `Bound`. Everything else goes
    /// through [`Encoder::encode`], with the same records as a result.
    ///
    /// Always inlined, with one [`TraceBuilder::put_val`] per kind of value (and `to` a
    /// constant at each call site): each store then knows its variant, and the record's fields are stored straight into the batch slot. (Returning
    /// a `Val` instead made the compiler assemble it on the stack and copy it into the slot
    /// as an unaligned 20-byte blob, a failed store-to-load forward on every event.)
    ///
    /// # Safety
    /// `obj` is a live object, and the GIL is held.
    #[inline(always)]
    pub unsafe fn encode_with(
        &self,
        b: &mut TraceBuilder,
        py: Python<'_>,
        obj: *mut ffi::PyObject,
        to: ValueTo,
    ) {
        // SAFETY: `obj` is a live object and the GIL is held (`py`); the reads below are of
        // exact builtin types, whose layouts the C API defines, and run no Python code.
        unsafe {
            if obj == ffi::Py_None() {
                return b.put_val(
                    to,
                    Val::None {
                        type_id: NONE_TYPE_ID.0 as u32,
                    },
                );
            }
            let tp = ffi::Py_TYPE(obj);
            if tp == std::ptr::addr_of_mut!(ffi::PyLong_Type) {
                let mut overflow: std::os::raw::c_int = 0;
                let i = match self.small_int_inline {
                    true => crate::tracer::ffi::small_int(obj),
                    false => None,
                };
                let i = i.unwrap_or_else(|| ffi::PyLong_AsLongLongAndOverflow(obj, &mut overflow));
                if overflow == 0 {
                    if let Some(type_id) = hot_type_id(b, HOT_INT, tp, TypeKind::Int) {
                        return b.put_val(to, Val::Int { type_id, i });
                    }
                }
            } else if tp == std::ptr::addr_of_mut!(ffi::PyFloat_Type) {
                let f = ffi::PyFloat_AS_DOUBLE(obj);
                if f.is_finite() {
                    if let Some(type_id) = hot_type_id(b, HOT_FLOAT, tp, TypeKind::Float) {
                        return b.put_val(to, Val::Float { type_id, f });
                    }
                }
            } else if tp == std::ptr::addr_of_mut!(ffi::PyBool_Type) {
                if let Some(type_id) = hot_type_id(b, HOT_BOOL, tp, TypeKind::Bool) {
                    return b.put_val(
                        to,
                        Val::Bool {
                            type_id,
                            b: obj == ffi::Py_True(),
                        },
                    );
                }
            }
        }
        let v = self.encode_val_slow(b, py, obj);
        b.put_val(to, v)
    }

    /// [`Encoder::encode_with`] for everything but the inline scalars.
    #[inline(never)]
    fn encode_val_slow(
        &self,
        b: &mut TraceBuilder,
        py: Python<'_>,
        obj: *mut ffi::PyObject,
    ) -> Val {
        // SAFETY: `obj` is a live object (the caller's contract) and the GIL is held.
        Val::from_record(self.encode(b, &unsafe { Bound::from_borrowed_ptr(py, obj) }))
    }

    fn encode_at(&self, b: &mut TraceBuilder, obj: &Bound<'_, PyAny>, depth: usize) -> ValueRecord {
        if obj.is_none() {
            return Self::none();
        }
        // bool before int: bool is an int subclass.
        if obj.is_exact_instance_of::<pyo3::types::PyBool>() {
            let type_id = type_id_of(b, obj, TypeKind::Bool);
            return ValueRecord::Bool {
                b: obj.is_truthy().unwrap_or(false),
                type_id,
            };
        }
        if let Ok(i) = obj.downcast::<PyInt>() {
            return encode_int(b, i);
        }
        if let Ok(f) = obj.downcast::<PyFloat>() {
            let type_id = type_id_of(b, obj, TypeKind::Float);
            let v = f.value();
            if !v.is_finite() {
                // JSON has no NaN or infinity (serde_json writes null, which no reader of
                // the format decodes as a float): recorded by their Python repr instead,
                // the same in both formats.
                let r = if v.is_nan() {
                    "nan"
                } else if v > 0.0 {
                    "inf"
                } else {
                    "-inf"
                };
                return ValueRecord::Raw {
                    r: r.into(),
                    type_id,
                };
            }
            return ValueRecord::Float { f: v, type_id };
        }
        if let Ok(s) = obj.downcast::<PyString>() {
            let type_id = type_id_of(b, obj, TypeKind::String);
            let text = match s.to_str() {
                Ok(t) => truncate(t, self.limits.max_str),
                // Lone surrogates cannot be UTF-8: record the escaped form instead.
                Err(_) => truncate(&s.to_string_lossy(), self.limits.max_str),
            };
            return ValueRecord::String { text, type_id };
        }
        if let Ok(by) = obj.downcast::<PyBytes>() {
            let type_id = type_id_of(b, obj, TypeKind::Raw);
            return ValueRecord::Raw {
                r: bytes_repr(by.as_bytes(), self.limits.max_str),
                type_id,
            };
        }
        let container = obj.downcast::<PyList>().is_ok()
            || obj.downcast::<PyTuple>().is_ok()
            || obj.downcast::<PyDict>().is_ok()
            || obj.downcast::<PySet>().is_ok()
            || obj.downcast::<PyFrozenSet>().is_ok();
        if container && depth >= self.limits.max_depth {
            let tname = type_name(obj);
            let type_id = type_id_of(b, obj, TypeKind::NonExpanded);
            let len = obj.len().unwrap_or(0);
            return ValueRecord::Raw {
                r: format!("<{tname} of {len} items>"),
                type_id,
            };
        }
        if let Ok(list) = obj.downcast::<PyList>() {
            let type_id = type_id_of(b, obj, TypeKind::Seq);
            let len = list.len();
            let mut elements = Vec::with_capacity(len.min(self.limits.max_items + 1));
            for i in 0..len.min(self.limits.max_items) {
                // `get_item` reads the list storage; it may fail if the list shrank.
                match list.get_item(i) {
                    Ok(item) => elements.push(self.encode_at(b, &item, depth + 1)),
                    Err(_) => break,
                }
            }
            self.more(b, &mut elements, len);
            return ValueRecord::Sequence {
                elements,
                is_slice: false,
                type_id,
            };
        }
        if let Ok(tuple) = obj.downcast::<PyTuple>() {
            let type_id = type_id_of(b, obj, TypeKind::Tuple);
            let len = tuple.len();
            let mut elements = Vec::with_capacity(len.min(self.limits.max_items + 1));
            for item in tuple.iter().take(self.limits.max_items) {
                elements.push(self.encode_at(b, &item, depth + 1));
            }
            self.more(b, &mut elements, len);
            return ValueRecord::Tuple { elements, type_id };
        }
        if let Ok(dict) = obj.downcast::<PyDict>() {
            // A dict is recorded as a sequence of (key, value) tuples.
            let type_id = type_id_of(b, obj, TypeKind::TableKind);
            let pair_type = b.type_id(TypeKind::Tuple, "tuple");
            let len = dict.len();
            let mut elements = Vec::with_capacity(len.min(self.limits.max_items + 1));
            // `PyDict_Next` reads the dict's own storage: no user `__iter__`/`items`.
            let mut pos: ffi::Py_ssize_t = 0;
            let mut key: *mut ffi::PyObject = std::ptr::null_mut();
            let mut value: *mut ffi::PyObject = std::ptr::null_mut();
            let py = obj.py();
            while elements.len() < self.limits.max_items
                && unsafe { ffi::PyDict_Next(dict.as_ptr(), &mut pos, &mut key, &mut value) } != 0
            {
                // SAFETY: PyDict_Next yields borrowed references valid while the dict lives.
                let (k, v) = unsafe {
                    (
                        Bound::from_borrowed_ptr(py, key),
                        Bound::from_borrowed_ptr(py, value),
                    )
                };
                let ek = self.encode_at(b, &k, depth + 1);
                let ev = self.encode_at(b, &v, depth + 1);
                elements.push(ValueRecord::Tuple {
                    elements: vec![ek, ev],
                    type_id: pair_type,
                });
            }
            self.more(b, &mut elements, len);
            return ValueRecord::Sequence {
                elements,
                is_slice: false,
                type_id,
            };
        }
        if obj.downcast::<PySet>().is_ok() || obj.downcast::<PyFrozenSet>().is_ok() {
            let type_id = type_id_of(b, obj, TypeKind::Set);
            let len = obj.len().unwrap_or(0);
            let mut elements = Vec::with_capacity(len.min(self.limits.max_items + 1));
            // `_PySet_NextEntry` reads the set's storage without running `__iter__`.
            let mut pos: ffi::Py_ssize_t = 0;
            let mut key: *mut ffi::PyObject = std::ptr::null_mut();
            let mut hash: ffi::Py_hash_t = 0;
            let py = obj.py();
            while elements.len() < self.limits.max_items
                && unsafe { ffi::_PySet_NextEntry(obj.as_ptr(), &mut pos, &mut key, &mut hash) }
                    != 0
            {
                let k = unsafe { Bound::from_borrowed_ptr(py, key) };
                elements.push(self.encode_at(b, &k, depth + 1));
            }
            self.more(b, &mut elements, len);
            return ValueRecord::Sequence {
                elements,
                is_slice: false,
                type_id,
            };
        }
        self.encode_other(b, obj, type_name(obj))
    }

    /// Appends a marker saying how many items were left out.
    fn more(&self, b: &mut TraceBuilder, elements: &mut Vec<ValueRecord>, len: usize) {
        if len > elements.len() {
            let type_id = b.type_id(TypeKind::NonExpanded, "...");
            elements.push(ValueRecord::Raw {
                r: format!("... {} more", len - elements.len()),
                type_id,
            });
        }
    }

    fn encode_other(
        &self,
        b: &mut TraceBuilder,
        obj: &Bound<'_, PyAny>,
        tname: &str,
    ) -> ValueRecord {
        let type_id = type_id_of(b, obj, TypeKind::Raw);
        let r = if is_python_defined_type(obj) {
            format!("<{tname} object at {:#x}>", obj.as_ptr() as usize)
        } else {
            match obj.repr() {
                Ok(s) => truncate(&s.to_string_lossy(), self.limits.max_str),
                Err(_) => {
                    return ValueRecord::Error {
                        msg: format!("<{tname}: repr failed>"),
                        type_id,
                    }
                }
            }
        };
        ValueRecord::Raw { r, type_id }
    }
}

fn encode_int(b: &mut TraceBuilder, i: &Bound<'_, PyInt>) -> ValueRecord {
    let mut overflow: std::os::raw::c_int = 0;
    // SAFETY: `i` is an int (or subclass); the call reads its digits, no user code.
    let v = unsafe { ffi::PyLong_AsLongLongAndOverflow(i.as_ptr(), &mut overflow) };
    let type_id: TypeId = type_id_of(b, i.as_any(), TypeKind::Int);
    if overflow == 0 {
        return ValueRecord::Int { i: v, type_id };
    }
    // Big integers: big-endian magnitude bytes, as the format's BigInt record wants.
    let negative = overflow < 0;
    let bytes = (|| -> PyResult<Vec<u8>> {
        let magnitude = i.call_method0("__abs__")?;
        let bits: usize = magnitude.call_method0("bit_length")?.extract()?;
        let raw = magnitude.call_method1("to_bytes", (bits.div_ceil(8), "big"))?;
        Ok(raw.downcast::<PyBytes>()?.as_bytes().to_vec())
    })();
    match bytes {
        Ok(b) => ValueRecord::BigInt {
            b,
            negative,
            type_id,
        },
        Err(_) => ValueRecord::Error {
            msg: "<int too large to record>".into(),
            type_id,
        },
    }
}

/// The type id of the static type `tp` (`int`, `float` or `bool`), cached in the builder's
/// slot `slot`; `None` for an id beyond `u32` (never in practice), which the caller encodes
/// the slow way.
#[inline]
fn hot_type_id(
    b: &mut TraceBuilder,
    slot: usize,
    tp: *mut ffi::PyTypeObject,
    kind: TypeKind,
) -> Option<u32> {
    b.hot_type_id(slot, tp as usize, kind, || {
        // SAFETY: `tp` is a static builtin type; its tp_name is a static C string.
        unsafe { CStr::from_ptr((*tp).tp_name) }
            .to_str()
            .unwrap_or("object")
    })
}

/// The type id of `obj`'s type. A static type (a builtin: not a heap type) lives as long
/// as the interpreter and keeps its name, so it is looked up by address, without reading
/// or hashing its name; classes created at run time (heap types) go by name, since their
/// address may be reused by another class once they are freed.
#[inline]
fn type_id_of(b: &mut TraceBuilder, obj: &Bound<'_, PyAny>, kind: TypeKind) -> TypeId {
    if is_python_defined_type(obj) {
        b.type_id(kind, type_name(obj))
    } else {
        // SAFETY: every object has a type.
        let tp = unsafe { ffi::Py_TYPE(obj.as_ptr()) } as usize;
        b.static_type_id(tp, kind, || type_name(obj))
    }
}

/// The type's `tp_name`: read from the type object, no attribute lookup.
fn type_name<'a>(obj: &'a Bound<'_, PyAny>) -> &'a str {
    // SAFETY: every object has a type whose tp_name is a NUL-terminated static or
    // type-owned string that lives as long as the type (which `obj` keeps alive).
    unsafe {
        let tp = ffi::Py_TYPE(obj.as_ptr());
        CStr::from_ptr((*tp).tp_name).to_str().unwrap_or("object")
    }
}

/// True for classes created by a `class` statement (heap types), whose `__repr__` may be
/// Python code.
fn is_python_defined_type(obj: &Bound<'_, PyAny>) -> bool {
    unsafe {
        let tp = ffi::Py_TYPE(obj.as_ptr());
        ((*tp).tp_flags & ffi::Py_TPFLAGS_HEAPTYPE) != 0
    }
}

pub fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        None => s.to_owned(),
        Some((cut, _)) => format!("{}...", &s[..cut]),
    }
}

fn bytes_repr(bytes: &[u8], max: usize) -> String {
    let mut out = String::with_capacity(bytes.len().min(max) + 3);
    out.push_str("b'");
    for &c in bytes.iter().take(max) {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(c as char),
            _ => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push('\'');
    if bytes.len() > max {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_counts_characters_not_bytes() {
        assert_eq!(truncate("héllo", 2), "hé...");
        assert_eq!(truncate("héllo", 5), "héllo");
    }

    #[test]
    fn bytes_repr_escapes_quotes_controls_and_non_ascii() {
        assert_eq!(bytes_repr(b"a'\n\x00\\", 10), "b'a\\'\\n\\x00\\\\'");
        assert_eq!(bytes_repr(b"abcdef", 3), "b'abc'...");
    }
}
