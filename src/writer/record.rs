//! The fixed-size records the recording thread appends, and their encoding into the
//! on-disk formats on the writer thread.
//!
//! The hot path (every line, call and return of the traced program) only writes a
//! [`Rec`] — 24 bytes, no heap memory for scalar values — into a recycled batch slot. The
//! writer thread turns each record into the CodeTracer event it stands for
//! (`runtime_tracing`'s `TraceLowLevelEvent`) and encodes it, by hand for the frequent
//! shapes (steps; values, calls and returns whose values are scalars), byte for byte what
//! serde writes (tested), and through serde for the rest.
//!
//! A call's arguments arrive as [`Rec::Arg`] records before its [`Rec::Call`]: each is
//! written as a `Value` event at once and its encoded `FullValueRecord` kept, so that the
//! `Call` event, which repeats the arguments, is written without keeping or copying the
//! values themselves.

use std::io::Write;

use runtime_tracing::{
    CallRecord, FullValueRecord, FunctionId, Line, PathId, ReturnRecord, StepRecord,
    TraceLowLevelEvent, TypeId, ValueRecord, VariableId,
};

/// A value as the hot path stores it: scalars inline, anything else boxed.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Int { type_id: u32, i: i64 },
    None { type_id: u32 },
    Bool { type_id: u32, b: bool },
    Float { type_id: u32, f: f64 },
    Other(Box<ValueRecord>),
}

impl Val {
    /// Scalars stay inline (no allocation); other values are moved into a box.
    #[inline]
    pub fn from_record(v: ValueRecord) -> Val {
        let small = |t: TypeId| u32::try_from(t.0).ok();
        match v {
            ValueRecord::Int { i, type_id } if small(type_id).is_some() => Val::Int {
                type_id: type_id.0 as u32,
                i,
            },
            ValueRecord::None { type_id } if small(type_id).is_some() => Val::None {
                type_id: type_id.0 as u32,
            },
            ValueRecord::Bool { b, type_id } if small(type_id).is_some() => Val::Bool {
                type_id: type_id.0 as u32,
                b,
            },
            ValueRecord::Float { f, type_id } if small(type_id).is_some() => Val::Float {
                type_id: type_id.0 as u32,
                f,
            },
            other => Val::Other(Box::new(other)),
        }
    }

    pub fn to_record(&self) -> ValueRecord {
        match self {
            Val::Int { type_id, i } => ValueRecord::Int {
                i: *i,
                type_id: TypeId(*type_id as usize),
            },
            Val::None { type_id } => ValueRecord::None {
                type_id: TypeId(*type_id as usize),
            },
            Val::Bool { type_id, b } => ValueRecord::Bool {
                b: *b,
                type_id: TypeId(*type_id as usize),
            },
            Val::Float { type_id, f } => ValueRecord::Float {
                f: *f,
                type_id: TypeId(*type_id as usize),
            },
            Val::Other(v) => (**v).clone(),
        }
    }
}

/// One recorded event, as the recording thread appends it.
#[derive(Debug, Clone)]
pub enum Rec {
    /// `Step { path_id, line }`.
    Step { path: u32, line: i64 },
    /// A `Value` event (one argument of the next `Call`).
    Arg { variable: u32, value: Val },
    /// A `Call` whose arguments are the `Arg` records since the previous call.
    Call { function: u32, nargs: u32 },
    /// `Return { return_value }`.
    Return(Val),
    /// Any other event (interning records, thread switches, events, and ids too large for
    /// the compact records): rare, so boxed.
    Event(Box<TraceLowLevelEvent>),
}

// The hot path writes one of these per event: keep it at three words.
const _: () = assert!(std::mem::size_of::<Rec>() <= 24);

impl Rec {
    /// Whether dropping the record frees memory (a boxed event or value); the others can be
    /// overwritten in place. Every variant is named, so a new one must say.
    #[inline(always)]
    pub fn owns_heap(&self) -> bool {
        let val = |v: &Val| match v {
            Val::Other(_) => true,
            Val::Int { .. } | Val::None { .. } | Val::Bool { .. } | Val::Float { .. } => false,
        };
        match self {
            Rec::Event(_) => true,
            Rec::Arg { value, .. } | Rec::Return(value) => val(value),
            Rec::Step { .. } | Rec::Call { .. } => false,
        }
    }

    /// The record standing for `event` (a compact one where it has that shape).
    pub fn from_event(event: TraceLowLevelEvent) -> Rec {
        match event {
            TraceLowLevelEvent::Step(s) if s.path_id.0 <= u32::MAX as usize => Rec::Step {
                path: s.path_id.0 as u32,
                line: s.line.0,
            },
            TraceLowLevelEvent::Return(r) => Rec::Return(Val::from_record(r.return_value)),
            other => Rec::Event(Box::new(other)),
        }
    }
}

/// Encodes records on the writer thread. Holds the encoded arguments of the call being
/// recorded until its `Call` record.
pub struct RecordEncoder {
    /// The arguments seen since the last call, each an encoded `FullValueRecord`.
    pending: Vec<u8>,
    pending_args: usize,
    scratch: Vec<u8>,
}

impl Default for RecordEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordEncoder {
    pub fn new() -> Self {
        RecordEncoder {
            pending: Vec::with_capacity(1 << 10),
            pending_args: 0,
            scratch: Vec::with_capacity(1 << 10),
        }
    }

    /// Appends `rec` as CBOR (binary v1 records) to `out`.
    pub fn cbor(&mut self, out: &mut Vec<u8>, rec: &Rec) -> std::io::Result<()> {
        match rec {
            Rec::Step { path, line } => write_cbor_step(out, *path as u64, *line),
            Rec::Arg { variable, value } => {
                let start = self.pending.len();
                // FullValueRecord: {"variable_id": …, "value": …}
                self.pending.extend_from_slice(b"\xa2\x6bvariable_id");
                cbor_head(&mut self.pending, 0, *variable as u64);
                self.pending.extend_from_slice(b"\x65value");
                cbor_value(&mut self.pending, value)?;
                self.pending_args += 1;
                out.extend_from_slice(b"\xa1\x65Value");
                out.extend_from_slice(&self.pending[start..]);
            }
            Rec::Call { function, nargs } => {
                debug_assert_eq!(*nargs as usize, self.pending_args);
                out.extend_from_slice(b"\xa1\x64Call\xa2\x6bfunction_id");
                cbor_head(out, 0, *function as u64);
                out.extend_from_slice(b"\x64args");
                cbor_head(out, 4, self.pending_args as u64);
                out.extend_from_slice(&self.pending);
                self.pending.clear();
                self.pending_args = 0;
            }
            Rec::Return(value) => {
                out.extend_from_slice(b"\xa1\x66Return\xa1\x6creturn_value");
                cbor_value(out, value)?;
            }
            Rec::Event(event) => {
                let taken = std::mem::take(out);
                *out = cbor4ii::serde::to_vec(taken, &**event)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Writes `rec` as one JSON array element (without the separator), exactly as
    /// `serde_json` writes the event.
    pub fn json(&mut self, out: &mut impl Write, rec: &Rec) -> std::io::Result<()> {
        match rec {
            Rec::Step { path, line } => {
                let mut buf = itoa::Buffer::new();
                out.write_all(b"{\"Step\":{\"path_id\":")?;
                out.write_all(buf.format(*path).as_bytes())?;
                out.write_all(b",\"line\":")?;
                out.write_all(buf.format(*line).as_bytes())?;
                out.write_all(b"}}")
            }
            Rec::Arg { variable, value } => {
                if self.pending_args > 0 {
                    self.pending.push(b',');
                }
                let at = self.pending.len();
                self.pending.extend_from_slice(b"{\"variable_id\":");
                self.pending
                    .extend_from_slice(itoa::Buffer::new().format(*variable).as_bytes());
                self.pending.extend_from_slice(b",\"value\":");
                json_value(&mut self.pending, value)?;
                self.pending.push(b'}');
                self.pending_args += 1;
                out.write_all(b"{\"Value\":")?;
                out.write_all(&self.pending[at..])?;
                out.write_all(b"}")
            }
            Rec::Call { function, nargs } => {
                debug_assert_eq!(*nargs as usize, self.pending_args);
                out.write_all(b"{\"Call\":{\"function_id\":")?;
                out.write_all(itoa::Buffer::new().format(*function).as_bytes())?;
                out.write_all(b",\"args\":[")?;
                out.write_all(&self.pending)?;
                self.pending.clear();
                self.pending_args = 0;
                out.write_all(b"]}}")
            }
            Rec::Return(value) => {
                self.scratch.clear();
                self.scratch
                    .extend_from_slice(b"{\"Return\":{\"return_value\":");
                json_value(&mut self.scratch, value)?;
                self.scratch.extend_from_slice(b"}}");
                out.write_all(&self.scratch)
            }
            Rec::Event(event) => serde_json::to_writer(out, &**event).map_err(std::io::Error::from),
        }
    }
}

/// The CodeTracer event `rec` stands for; `args` are the arguments since the last call
/// (taken by a `Call`). For readers and tests; the writer encodes without building it.
pub fn to_event(rec: &Rec, args: &mut Vec<FullValueRecord>) -> TraceLowLevelEvent {
    match rec {
        Rec::Step { path, line } => TraceLowLevelEvent::Step(StepRecord {
            path_id: PathId(*path as usize),
            line: Line(*line),
        }),
        Rec::Arg { variable, value } => {
            let v = FullValueRecord {
                variable_id: VariableId(*variable as usize),
                value: value.to_record(),
            };
            args.push(v.clone());
            TraceLowLevelEvent::Value(v)
        }
        Rec::Call { function, .. } => TraceLowLevelEvent::Call(CallRecord {
            function_id: FunctionId(*function as usize),
            args: std::mem::take(args),
        }),
        Rec::Return(value) => TraceLowLevelEvent::Return(ReturnRecord {
            return_value: value.to_record(),
        }),
        Rec::Event(e) => (**e).clone(),
    }
}

/// A CBOR head: major type and argument, in the shortest form (as every CBOR encoder
/// writes it).
pub(crate) fn cbor_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    match arg {
        0..=23 => out.push(m | arg as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, arg as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(arg as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(arg as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&arg.to_be_bytes());
        }
    }
}

fn cbor_int(out: &mut Vec<u8>, i: i64) {
    if i >= 0 {
        cbor_head(out, 0, i as u64);
    } else {
        cbor_head(out, 1, !(i as u64));
    }
}

/// A `Step` event in CBOR, byte for byte what serde (`cbor4ii`) writes: a one-entry map
/// from `"Step"` to the map `{"path_id": …, "line": …}`.
pub(crate) fn write_cbor_step(out: &mut Vec<u8>, path_id: u64, line: i64) {
    out.extend_from_slice(b"\xa1\x64Step\xa2\x67path_id");
    cbor_head(out, 0, path_id);
    out.extend_from_slice(b"\x64line");
    cbor_int(out, line);
}

/// A value record as serde writes it (internally tagged: `{"kind": …, fields…}`).
fn cbor_value(out: &mut Vec<u8>, v: &Val) -> std::io::Result<()> {
    match v {
        Val::Int { type_id, i } => {
            out.extend_from_slice(b"\xa3\x64kind\x63Int\x61i");
            cbor_int(out, *i);
            out.extend_from_slice(b"\x67type_id");
            cbor_head(out, 0, *type_id as u64);
        }
        Val::None { type_id } => {
            out.extend_from_slice(b"\xa2\x64kind\x64None\x67type_id");
            cbor_head(out, 0, *type_id as u64);
        }
        Val::Bool { type_id, b } => {
            out.extend_from_slice(b"\xa3\x64kind\x64Bool\x61b");
            out.push(if *b { 0xf5 } else { 0xf4 });
            out.extend_from_slice(b"\x67type_id");
            cbor_head(out, 0, *type_id as u64);
        }
        Val::Float { .. } => {
            let taken = std::mem::take(out);
            *out = cbor4ii::serde::to_vec(taken, &v.to_record())
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        Val::Other(record) => {
            let taken = std::mem::take(out);
            *out = cbor4ii::serde::to_vec(taken, &**record)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
    }
    Ok(())
}

fn json_value(out: &mut Vec<u8>, v: &Val) -> std::io::Result<()> {
    let mut buf = itoa::Buffer::new();
    match v {
        Val::Int { type_id, i } => {
            out.extend_from_slice(b"{\"kind\":\"Int\",\"i\":");
            out.extend_from_slice(buf.format(*i).as_bytes());
            out.extend_from_slice(b",\"type_id\":");
            out.extend_from_slice(buf.format(*type_id).as_bytes());
            out.push(b'}');
        }
        Val::None { type_id } => {
            out.extend_from_slice(b"{\"kind\":\"None\",\"type_id\":");
            out.extend_from_slice(buf.format(*type_id).as_bytes());
            out.push(b'}');
        }
        Val::Bool { type_id, b } => {
            out.extend_from_slice(b"{\"kind\":\"Bool\",\"b\":");
            out.extend_from_slice(if *b { b"true" } else { b"false" });
            out.extend_from_slice(b",\"type_id\":");
            out.extend_from_slice(buf.format(*type_id).as_bytes());
            out.push(b'}');
        }
        Val::Float { .. } => serde_json::to_writer(&mut *out, &v.to_record())?,
        Val::Other(record) => serde_json::to_writer(&mut *out, &**record)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime_tracing::{TypeKind, TypeRecord, TypeSpecificInfo};

    fn values() -> Vec<Val> {
        let mut v = Vec::new();
        for i in [
            0i64, 1, 23, 24, 255, 256, 65535, 65536, -1, -24, -25, -256, -257,
        ] {
            v.push(Val::Int { type_id: 1, i });
        }
        v.push(Val::Int {
            type_id: u32::MAX,
            i: i64::MAX,
        });
        v.push(Val::Int {
            type_id: 300,
            i: i64::MIN,
        });
        v.push(Val::None { type_id: 0 });
        v.push(Val::Bool {
            type_id: 2,
            b: true,
        });
        v.push(Val::Bool {
            type_id: 70000,
            b: false,
        });
        for f in [0.0, 1.5, -2.25e300, f64::NAN, f64::INFINITY] {
            v.push(Val::Float { type_id: 3, f });
        }
        v.push(Val::Other(Box::new(ValueRecord::String {
            text: "a \"quoted\" é\n".into(),
            type_id: TypeId(4),
        })));
        v.push(Val::Other(Box::new(ValueRecord::Sequence {
            elements: vec![
                ValueRecord::Int {
                    i: 1,
                    type_id: TypeId(1),
                },
                ValueRecord::None { type_id: TypeId(0) },
            ],
            is_slice: false,
            type_id: TypeId(5),
        })));
        v
    }

    /// Calls with 0, 1 and 3 arguments of every value shape, returns of each, steps and
    /// an interning record.
    fn stream() -> Vec<Rec> {
        let vals = values();
        let mut recs = vec![
            Rec::Event(Box::new(TraceLowLevelEvent::Type(TypeRecord {
                kind: TypeKind::Int,
                lang_type: "int".into(),
                specific_info: TypeSpecificInfo::None,
            }))),
            Rec::Call {
                function: 0,
                nargs: 0,
            },
        ];
        for (k, v) in vals.iter().enumerate() {
            recs.push(Rec::Step {
                path: k as u32 * 1000,
                line: -(k as i64) * 7919,
            });
            recs.push(Rec::Arg {
                variable: k as u32 * 300,
                value: v.clone(),
            });
            recs.push(Rec::Call {
                function: 70000 + k as u32,
                nargs: 1,
            });
            for j in 0..3 {
                recs.push(Rec::Arg {
                    variable: j,
                    value: vals[(k + j as usize) % vals.len()].clone(),
                });
            }
            recs.push(Rec::Call {
                function: 1,
                nargs: 3,
            });
            recs.push(Rec::Return(v.clone()));
        }
        recs
    }

    #[test]
    fn compact_records_encode_byte_for_byte_as_serde_encodes_their_events() {
        let mut enc = RecordEncoder::new();
        let mut args = Vec::new();
        for rec in stream() {
            let event = to_event(&rec, &mut args);
            let mut ours = Vec::new();
            enc.cbor(&mut ours, &rec).unwrap();
            assert_eq!(
                ours,
                cbor4ii::serde::to_vec(Vec::new(), &event).unwrap(),
                "{rec:?}"
            );
        }
    }

    #[test]
    fn compact_records_write_json_exactly_as_serde_json_writes_their_events() {
        let mut enc = RecordEncoder::new();
        let mut args = Vec::new();
        for rec in stream() {
            let event = to_event(&rec, &mut args);
            let mut ours = Vec::new();
            enc.json(&mut ours, &rec).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&event).unwrap(),
                "{rec:?}"
            );
        }
    }

    #[test]
    fn scalar_values_stay_inline_and_others_round_trip() {
        for v in values() {
            let back = Val::from_record(v.to_record());
            match (&v, &back) {
                (Val::Float { f: a, .. }, Val::Float { f: b, .. }) if a.is_nan() => {
                    assert!(b.is_nan())
                }
                _ => assert_eq!(back, v),
            }
        }
        // A type id beyond u32 does not fit the compact form: boxed, same value.
        let big = ValueRecord::Int {
            i: 5,
            type_id: TypeId(1 << 40),
        };
        assert_eq!(Val::from_record(big.clone()), Val::Other(Box::new(big)));
    }
}
