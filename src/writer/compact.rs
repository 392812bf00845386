//! The compact events format (`trace.ctc`): the recorder's [`Rec`] records as tagged
//! varints, in the same seekable zstd container as the binary format.
//!
//! Why a format of its own: the CodeTracer binary v1 stream is CBOR maps with string keys
//! (a `Step` is 22 bytes before compression, a one-argument call with its `Value` event
//! and its return about 150), and compressing those bytes was half of the recorder's cost
//! on a call-heavy program. The same events here are 2-4 bytes each before compression,
//! so the writer thread does a fraction of the work; the file converts to CodeTracer
//! binary or JSON, event for event, with `python -m ct_recorder.convert`
//! ([`super::convert`]), and the project's readers read it directly.
//!
//! Layout: the 8-byte [`COMPACT_HEADER_V1`], then zstd frames (each flush of the writer ends
//! one, so a file cut by a crash decodes up to its last flush), then the seek table when
//! the run finished, exactly as in `trace.bin`. The decompressed stream is a sequence of
//! records, each a tag byte and its fields:
//!
//! | tag | record | fields |
//! |---|---|---|
//! | `0x00` | any other event | varint length, the event in CBOR (as in binary v1) |
//! | `0x01` | `Step` | varint path id, zigzag varint line |
//! | `0x02` | `Step` in the previous step's path | zigzag varint line minus the previous step's line |
//! | `0x03` | `Call` | varint function id, varint argument count (the arguments are the `Value` records just before it) |
//! | `0x10 + k` | `Value` (an argument of the next call) | varint variable id, then a value of kind `k` |
//! | `0x20 + k` | `Return` | a value of kind `k` |
//!
//! A value of kind `k`: `0` Int (varint type id, zigzag varint), `1` None (varint type
//! id), `2` False and `3` True (varint type id), `4` Float (varint type id, 8 bytes
//! little-endian), `5` any other value (varint length, the value record in CBOR).
//! Varints are LEB128; zigzag maps signed to unsigned (0, -1, 1, -2, … → 0, 1, 2, 3, …).

use runtime_tracing::{TraceLowLevelEvent, ValueRecord};

use super::record::{Rec, Val};

/// The first 8 bytes of a compact events file: the CodeTracer family's `C0DE72ACE2`, `C`
/// for compact, version 1, one reserved zero byte.
pub const COMPACT_HEADER_V1: &[u8; 8] = &[0xC0, 0xDE, 0x72, 0xAC, 0xE2, b'C', 0x01, 0x00];

const EVENT: u8 = 0x00;
const STEP: u8 = 0x01;
const STEP_SAME_PATH: u8 = 0x02;
const CALL: u8 = 0x03;
const ARG: u8 = 0x10;
const RETURN: u8 = 0x20;

const INT: u8 = 0;
const NONE: u8 = 1;
const FALSE: u8 = 2;
const TRUE: u8 = 3;
const FLOAT: u8 = 4;
const OTHER: u8 = 5;

/// Before the first step: no path is "the previous one".
const NO_PATH: u32 = u32::MAX;

#[inline]
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn zigzag(i: i64) -> u64 {
    ((i << 1) ^ (i >> 63)) as u64
}

#[inline]
fn unzigzag(u: u64) -> i64 {
    (u >> 1) as i64 ^ -((u & 1) as i64)
}

fn cbor_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Encodes records on the writer thread. Holds the previous step (for `0x02`).
pub struct CompactEncoder {
    last_path: u32,
    last_line: i64,
    scratch: Vec<u8>,
}

impl Default for CompactEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl CompactEncoder {
    pub fn new() -> Self {
        CompactEncoder {
            last_path: NO_PATH,
            last_line: 0,
            scratch: Vec::new(),
        }
    }

    /// Appends `rec` to `out`.
    pub fn encode(&mut self, out: &mut Vec<u8>, rec: &Rec) -> std::io::Result<()> {
        match rec {
            Rec::Step { path, line } => {
                if *path == self.last_path {
                    out.push(STEP_SAME_PATH);
                    varint(out, zigzag(line.wrapping_sub(self.last_line)));
                } else {
                    out.push(STEP);
                    varint(out, *path as u64);
                    varint(out, zigzag(*line));
                    self.last_path = *path;
                }
                self.last_line = *line;
            }
            Rec::Arg { variable, value } => {
                let at = out.len();
                out.push(ARG);
                varint(out, *variable as u64);
                let kind = self.value(out, value)?;
                out[at] |= kind;
            }
            Rec::Call { function, nargs } => {
                out.push(CALL);
                varint(out, *function as u64);
                varint(out, *nargs as u64);
            }
            Rec::Return(value) => {
                let at = out.len();
                out.push(RETURN);
                let kind = self.value(out, value)?;
                out[at] |= kind;
            }
            Rec::Event(event) => {
                out.push(EVENT);
                self.scratch.clear();
                let cbor = cbor4ii::serde::to_vec(std::mem::take(&mut self.scratch), &**event)
                    .map_err(cbor_err)?;
                varint(out, cbor.len() as u64);
                out.extend_from_slice(&cbor);
                self.scratch = cbor;
            }
        }
        Ok(())
    }

    /// Appends the value's fields and returns its kind (for the tag).
    #[inline]
    fn value(&mut self, out: &mut Vec<u8>, v: &Val) -> std::io::Result<u8> {
        Ok(match v {
            Val::Int { type_id, i } => {
                varint(out, *type_id as u64);
                varint(out, zigzag(*i));
                INT
            }
            Val::None { type_id } => {
                varint(out, *type_id as u64);
                NONE
            }
            Val::Bool { type_id, b } => {
                varint(out, *type_id as u64);
                if *b {
                    TRUE
                } else {
                    FALSE
                }
            }
            Val::Float { type_id, f } => {
                varint(out, *type_id as u64);
                out.extend_from_slice(&f.to_le_bytes());
                FLOAT
            }
            Val::Other(record) => {
                self.scratch.clear();
                let cbor = cbor4ii::serde::to_vec(std::mem::take(&mut self.scratch), &**record)
                    .map_err(cbor_err)?;
                varint(out, cbor.len() as u64);
                out.extend_from_slice(&cbor);
                self.scratch = cbor;
                OTHER
            }
        })
    }
}

/// Decodes records, in order, from the decompressed stream.
pub struct CompactDecoder {
    last_path: u32,
    last_line: i64,
}

impl Default for CompactDecoder {
    fn default() -> Self {
        Self::new()
    }
}

/// A cursor over bytes that may end inside a record: `None` means "need more bytes".
struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    #[inline]
    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    #[inline]
    fn varint(&mut self) -> Result<Option<u64>, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(b) = self.byte() else {
                return Ok(None);
            };
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(Some(v));
            }
        }
        Err("a varint longer than 64 bits".into())
    }

    fn bytes(&mut self, n: u64) -> Option<&[u8]> {
        let n = usize::try_from(n).ok()?;
        let end = self.at.checked_add(n)?;
        let s = self.buf.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
}

/// `?` for "need more bytes": returns `Ok(None)` from the enclosing decoder.
macro_rules! need {
    ($e:expr) => {
        match $e {
            Some(v) => v,
            None => return Ok(None),
        }
    };
}

fn u32_id(v: u64, what: &str) -> Result<u32, String> {
    u32::try_from(v).map_err(|_| format!("a {what} id out of range ({v})"))
}

impl CompactDecoder {
    pub fn new() -> Self {
        CompactDecoder {
            last_path: NO_PATH,
            last_line: 0,
        }
    }

    /// The record at the start of `buf` and its length in bytes; `None` when `buf` ends
    /// inside it (nothing is consumed then); an error for bytes no encoder writes.
    pub fn decode(&mut self, buf: &[u8]) -> Result<Option<(Rec, usize)>, String> {
        let mut c = Cursor { buf, at: 0 };
        let tag = need!(c.byte());
        let rec = match tag {
            STEP => {
                let path = u32_id(need!(c.varint()?), "path")?;
                let line = unzigzag(need!(c.varint()?));
                if path == NO_PATH {
                    return Err("a step with a reserved path id".into());
                }
                self.last_path = path;
                self.last_line = line;
                Rec::Step { path, line }
            }
            STEP_SAME_PATH => {
                if self.last_path == NO_PATH {
                    return Err("a step in the previous step's path before any step".into());
                }
                let line = self.last_line.wrapping_add(unzigzag(need!(c.varint()?)));
                self.last_line = line;
                Rec::Step {
                    path: self.last_path,
                    line,
                }
            }
            CALL => {
                let function = u32_id(need!(c.varint()?), "function")?;
                let nargs = u32_id(need!(c.varint()?), "argument count")?;
                Rec::Call { function, nargs }
            }
            EVENT => {
                let len = need!(c.varint()?);
                let cbor = need!(c.bytes(len));
                let event: TraceLowLevelEvent = cbor4ii::serde::from_slice(cbor)
                    .map_err(|e| format!("a malformed event: {e}"))?;
                Rec::Event(Box::new(event))
            }
            t if t & 0xf0 == ARG && t & 0x0f <= OTHER => {
                let variable = u32_id(need!(c.varint()?), "variable")?;
                let value = need!(Self::value(&mut c, t & 0x0f)?);
                Rec::Arg { variable, value }
            }
            t if t & 0xf0 == RETURN && t & 0x0f <= OTHER => {
                Rec::Return(need!(Self::value(&mut c, t & 0x0f)?))
            }
            t => return Err(format!("an unknown record tag 0x{t:02x}")),
        };
        // A step's state was updated above only once the whole record was there: every
        // `need!` comes before the updates.
        Ok(Some((rec, c.at)))
    }

    fn value(c: &mut Cursor<'_>, kind: u8) -> Result<Option<Val>, String> {
        let type_id = need!(c.varint()?);
        if kind == OTHER {
            let cbor = need!(c.bytes(type_id));
            let record: ValueRecord =
                cbor4ii::serde::from_slice(cbor).map_err(|e| format!("a malformed value: {e}"))?;
            return Ok(Some(Val::Other(Box::new(record))));
        }
        let type_id = u32_id(type_id, "type")?;
        Ok(Some(match kind {
            INT => Val::Int {
                type_id,
                i: unzigzag(need!(c.varint()?)),
            },
            NONE => Val::None { type_id },
            FALSE | TRUE => Val::Bool {
                type_id,
                b: kind == TRUE,
            },
            FLOAT => {
                let raw = need!(c.bytes(8));
                Val::Float {
                    type_id,
                    f: f64::from_le_bytes(raw.try_into().expect("8 bytes")),
                }
            }
            _ => unreachable!("kinds are checked by the caller"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime_tracing::{FunctionRecord, Line, PathId, TypeId};

    fn stream() -> Vec<Rec> {
        let other = ValueRecord::String {
            text: "s\"é".into(),
            type_id: TypeId(7),
        };
        vec![
            Rec::Event(Box::new(TraceLowLevelEvent::Path("/app/x.py".into()))),
            Rec::Event(Box::new(TraceLowLevelEvent::Function(FunctionRecord {
                name: "f".into(),
                path_id: PathId(0),
                line: Line(3),
            }))),
            Rec::Step { path: 0, line: 3 },
            Rec::Step { path: 0, line: 2 },
            Rec::Step {
                path: 0,
                line: i64::MAX,
            },
            Rec::Step {
                path: 0,
                line: i64::MIN,
            },
            Rec::Step { path: 9, line: -1 },
            Rec::Arg {
                variable: 0,
                value: Val::Int {
                    type_id: 1,
                    i: i64::MIN,
                },
            },
            Rec::Arg {
                variable: u32::MAX,
                value: Val::Float {
                    type_id: 2,
                    f: -0.5,
                },
            },
            Rec::Arg {
                variable: 300,
                value: Val::Bool {
                    type_id: 3,
                    b: true,
                },
            },
            Rec::Arg {
                variable: 1,
                value: Val::Bool {
                    type_id: 3,
                    b: false,
                },
            },
            Rec::Arg {
                variable: 2,
                value: Val::Other(Box::new(other.clone())),
            },
            Rec::Call {
                function: 70_000,
                nargs: 5,
            },
            Rec::Return(Val::None { type_id: u32::MAX }),
            Rec::Return(Val::Other(Box::new(other))),
            Rec::Event(Box::new(TraceLowLevelEvent::DropLastStep)),
            Rec::Step { path: 9, line: 0 },
        ]
    }

    fn encode(recs: &[Rec]) -> Vec<u8> {
        let mut enc = CompactEncoder::new();
        let mut out = Vec::new();
        for r in recs {
            enc.encode(&mut out, r).unwrap();
        }
        out
    }

    fn same(a: &Rec, b: &Rec) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    #[test]
    fn every_record_shape_round_trips() {
        let recs = stream();
        let bytes = encode(&recs);
        let mut dec = CompactDecoder::new();
        let mut at = 0;
        for want in &recs {
            let (got, n) = dec.decode(&bytes[at..]).unwrap().expect("a whole record");
            assert!(same(&got, want), "{got:?} != {want:?}");
            at += n;
        }
        assert_eq!(at, bytes.len());
    }

    #[test]
    fn a_step_in_the_same_path_is_two_bytes() {
        let bytes = encode(&[
            Rec::Step { path: 4, line: 10 },
            Rec::Step { path: 4, line: 11 },
        ]);
        assert_eq!(bytes.len(), 3 + 2);
    }

    #[test]
    fn bytes_cut_inside_a_record_ask_for_more_and_consume_nothing() {
        let recs = stream();
        let bytes = encode(&recs);
        // Decoding with the stream cut at every byte: whole records come out, the cut one
        // is "need more", and the decoder's state is untouched by it (feeding the rest
        // then decodes the same records).
        for cut in 0..bytes.len() {
            let mut dec = CompactDecoder::new();
            let mut at = 0;
            let mut got = Vec::new();
            while let Some((r, n)) = dec.decode(&bytes[at..cut]).unwrap() {
                got.push(r);
                at += n;
            }
            while at < bytes.len() {
                let (r, n) = dec.decode(&bytes[at..]).unwrap().expect("a whole record");
                got.push(r);
                at += n;
            }
            assert_eq!(got.len(), recs.len(), "cut at {cut}");
            assert!(
                got.iter().zip(&recs).all(|(a, b)| same(a, b)),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn bytes_no_encoder_writes_are_an_error() {
        let mut dec = CompactDecoder::new();
        assert!(dec.decode(&[0x7f]).is_err());
        assert!(dec.decode(&[STEP_SAME_PATH, 0]).is_err());
        assert!(dec.decode(&[ARG | 6, 0, 0]).is_err());
        assert!(dec
            .decode(&[CALL, 0xff, 0xff, 0xff, 0xff, 0x7f, 0])
            .is_err());
        assert!(dec.decode(&[EVENT, 2, 0xff, 0xff]).is_err());
        let mut long = vec![STEP];
        long.extend([0xff; 11]);
        assert!(dec.decode(&long).is_err());
    }
}
