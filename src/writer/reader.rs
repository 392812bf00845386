//! Streaming readers of the events files the recorder writes, for a finished run and for
//! one that was killed.
//!
//! Both read one event at a time with bounded buffers, so memory stays flat however long
//! the trace is. Each tells how the stream ended ([`End`]): a finished events file ends with
//! its closing record (JSON: the array's `]`; binary: the seek table after the last zstd
//! frame), and anything else — a file cut mid-record by a SIGKILL, `os._exit` or a crash —
//! reads back up to the last whole event and reports the run as incomplete.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};

use std::path::{Path, PathBuf};

use runtime_tracing::TraceLowLevelEvent;

use super::compact::{CompactDecoder, COMPACT_HEADER_V1};
use super::py_events::{cbor_fast_prefix, json_fast_prefix, Fast};
use super::record::{Rec, RecordEncoder, Val};
use super::sink::BINARY_HEADER_V1;
use super::TraceFormat;

/// The last four bytes of a seekable zstd file (the seek table's integrity field), which
/// the binary writer appends when the run finishes.
const SEEKABLE_MAGIC: [u8; 4] = 0x8F92_EAB1u32.to_le_bytes();

/// How an events stream ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// The writer closed the file: every event of the run is there.
    Complete,
    /// The file stops before its closing record: the run did not finish (killed, crashed)
    /// and the events up to the last whole one were read.
    Truncated(String),
}

#[derive(Debug)]
pub struct ReadError(pub String);

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReadError {}

/// The events file of a trace directory (`trace.json`, `trace.bin` or `trace.ctc`), or
/// `path` itself when it is a file.
pub fn events_file(path: &Path) -> Result<(PathBuf, TraceFormat), ReadError> {
    if path.is_dir() {
        let candidates = TraceFormat::ALL.map(|f| (path.join(f.events_file_name()), f));
        return match candidates.into_iter().find(|(p, _)| p.exists()) {
            Some(found) => Ok(found),
            None => Err(ReadError(format!(
                "{}: no events file (trace.json, trace.bin or trace.ctc)",
                path.display()
            ))),
        };
    }
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => TraceFormat::Json,
        Some("ctc") => TraceFormat::Compact,
        _ => TraceFormat::Binary,
    };
    Ok((path.to_path_buf(), format))
}

/// Events of one events file, in order.
pub struct EventReader {
    inner: Inner,
    end: Option<End>,
    path: PathBuf,
    format: TraceFormat,
    /// The current record's bytes (JSON text or one CBOR item).
    raw: Vec<u8>,
    /// A compact file's current record as JSON text (written with the record, because
    /// the JSON encoder, like the CBOR one, must see every argument before its call).
    json: Vec<u8>,
}

enum Inner {
    Json(JsonElements),
    Binary(CborRecords),
    Compact(CompactRecords),
}

/// What [`EventReader::next_fast`] read.
pub enum Next {
    /// A record of a frequent shape, read in place.
    Fast(Fast),
    /// Any other record, of this kind; its bytes are in [`EventReader::raw`].
    Raw(&'static str),
}

/// The kinds of events, by their name in the format (the serde variant names).
const KINDS: [&str; 24] = [
    "Step",
    "Path",
    "VariableName",
    "Variable",
    "Type",
    "Value",
    "Function",
    "Call",
    "Return",
    "Event",
    "Asm",
    "BindVariable",
    "Assignment",
    "DropVariables",
    "CompoundValue",
    "CellValue",
    "AssignCompoundItem",
    "AssignCell",
    "VariableCell",
    "DropVariable",
    "ThreadStart",
    "ThreadExit",
    "ThreadSwitch",
    "DropLastStep",
];

fn kind_of(name: &[u8]) -> Option<&'static str> {
    KINDS.iter().copied().find(|k| k.as_bytes() == name)
}

impl EventReader {
    /// Opens `path` (a trace directory or an events file).
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        let (path, format) = events_file(path)?;
        let fail = |e: io::Error| ReadError(format!("{}: {e}", path.display()));
        let mut file = File::open(&path).map_err(fail)?;
        let mut end = None;
        let inner = match format {
            TraceFormat::Json => Inner::Json(JsonElements::new(file)),
            TraceFormat::Binary | TraceFormat::Compact => {
                let (header, what) = match format {
                    TraceFormat::Compact => (COMPACT_HEADER_V1, "a compact trace (trace.ctc)"),
                    _ => (BINARY_HEADER_V1, "a CodeTracer binary trace"),
                };
                let mut got = [0u8; 8];
                let n = read_up_to(&mut file, &mut got).map_err(fail)?;
                if n < got.len() && got[..n] == header[..n] {
                    // Killed before the header reached the disk: no events, not finished.
                    end = Some(End::Truncated("the events file is empty".into()));
                } else if &got != header {
                    return Err(ReadError(format!(
                        "{}: not {what} (wrong header)",
                        path.display()
                    )));
                }
                let len = file.seek(SeekFrom::End(0)).map_err(fail)?;
                let mut tail = [0u8; 4];
                if len >= 8 + 4 {
                    file.seek(SeekFrom::End(-4)).map_err(fail)?;
                    file.read_exact(&mut tail).map_err(fail)?;
                }
                file.seek(SeekFrom::Start(n as u64)).map_err(fail)?;
                let frames = Frames {
                    stream: ZstdStream::new(file)?,
                    buf: Vec::with_capacity(1 << 17),
                    start: 0,
                    finished_on_disk: tail == SEEKABLE_MAGIC,
                };
                match format {
                    TraceFormat::Compact => Inner::Compact(CompactRecords {
                        frames,
                        decoder: CompactDecoder::new(),
                        cbor: RecordEncoder::new(),
                        json: RecordEncoder::new(),
                    }),
                    _ => Inner::Binary(CborRecords { frames }),
                }
            }
        };
        Ok(EventReader {
            inner,
            end,
            path,
            format,
            raw: Vec::with_capacity(1 << 10),
            json: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn format(&self) -> TraceFormat {
        self.format
    }

    /// How the stream ended; `None` until the last event has been read.
    pub fn end(&self) -> Option<&End> {
        self.end.as_ref()
    }

    /// Moves to the next event without decoding it and returns its kind (`"Step"`,
    /// `"Call"`…); its bytes are then in [`EventReader::raw`]. `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<&'static str>, ReadError> {
        if self.end.is_some() {
            return Ok(None);
        }
        self.raw.clear();
        let got = match &mut self.inner {
            Inner::Json(elements) => elements.next_element(&mut self.raw),
            Inner::Binary(records) => records.next_record(&mut self.raw),
            Inner::Compact(records) => match records.next_rec() {
                // The record's event, in CBOR as binary v1 has it, for `decode`, and as
                // the JSON text serde writes, for `current_json` (the hand-written
                // encoders: cheaper than decoding the CBOR and encoding that again).
                Ok(Ok(rec)) => {
                    self.json.clear();
                    records
                        .cbor
                        .cbor(&mut self.raw, &rec)
                        .and_then(|()| records.json.json(&mut self.json, &rec))
                        .map(|()| Element::Event)
                        .map_err(|e| e.to_string())
                }
                Ok(Err(end)) => Ok(Element::End(end)),
                Err(e) => Err(e),
            },
        };
        self.finish_record(got)
    }

    /// The kind of the record `got` says was read into `raw` (or how the file ended).
    fn finish_record(
        &mut self,
        got: Result<Element, String>,
    ) -> Result<Option<&'static str>, ReadError> {
        match got {
            Ok(Element::Event) => {
                let kind = match self.format {
                    TraceFormat::Json => json_kind(&self.raw),
                    TraceFormat::Binary | TraceFormat::Compact => cbor_kind(&self.raw),
                };
                kind.map(Some)
                    .ok_or_else(|| self.error("an event of an unknown kind"))
            }
            Ok(Element::End(end)) => {
                self.end = Some(end);
                Ok(None)
            }
            Err(e) => Err(self.error(e)),
        }
    }

    /// The next record of a binary or JSON file, read in place when it has one of the
    /// frequent shapes ([`Fast`]: a step, or a value, call or return with a scalar value;
    /// a `Call`'s arguments are then in `args`), without looking for its end first or
    /// copying it; any other record as [`EventReader::next_record`] reads it, its bytes
    /// in [`EventReader::raw`]. What it reads is what `next_record` followed by
    /// [`cbor_fast`](super::py_events::cbor_fast) or
    /// [`json_fast`](super::py_events::json_fast) would give. `None` at the end. A compact
    /// file's records are read with [`EventReader::next_rec`].
    pub fn next_fast(&mut self, args: &mut Vec<(u32, Val)>) -> Result<Option<Next>, ReadError> {
        if self.end.is_some() {
            return Ok(None);
        }
        self.raw.clear();
        let got = match &mut self.inner {
            Inner::Json(elements) => match elements.try_fast(args) {
                Ok(Some(fast)) => return Ok(Some(Next::Fast(fast))),
                Ok(None) => elements.next_element(&mut self.raw),
                Err(e) => Err(e.to_string()),
            },
            Inner::Binary(records) => match records.next_fast(&mut self.raw, args) {
                Ok(Ok(Some(fast))) => return Ok(Some(Next::Fast(fast))),
                Ok(Ok(None)) => Ok(Element::Event),
                Ok(Err(end)) => Ok(Element::End(end)),
                Err(e) => Err(e),
            },
            Inner::Compact(_) => {
                return Err(self.error("a compact trace is read with next_rec"));
            }
        };
        Ok(self.finish_record(got)?.map(Next::Raw))
    }

    /// The next record as the recorder wrote it (a compact file's own records; for the
    /// other formats, the record standing for each event). `None` at the end. A reader is
    /// read with this or with [`EventReader::next_record`], not both: a compact file's
    /// `Call` takes its arguments from the records `next_record` turned into events.
    pub fn next_rec(&mut self) -> Result<Option<Rec>, ReadError> {
        if self.end.is_some() {
            return Ok(None);
        }
        let Inner::Compact(records) = &mut self.inner else {
            return Ok(self.next_event()?.map(Rec::from_event));
        };
        match records.next_rec() {
            Ok(Ok(rec)) => Ok(Some(rec)),
            Ok(Err(end)) => {
                self.end = Some(end);
                Ok(None)
            }
            Err(e) => Err(self.error(e)),
        }
    }

    /// The current record's bytes (after [`EventReader::next_record`]): JSON text for a
    /// JSON file, one CBOR item for the others.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Decodes the current record (after [`EventReader::next_record`]).
    pub fn decode(&self) -> Result<TraceLowLevelEvent, ReadError> {
        match self.format {
            TraceFormat::Json => serde_json::from_slice(&self.raw)
                .map_err(|e| self.error(format!("a malformed event: {e}"))),
            TraceFormat::Binary | TraceFormat::Compact => cbor4ii::serde::from_slice(&self.raw)
                .map_err(|e| self.error(format!("a malformed event: {e}"))),
        }
    }

    /// The next event as the events file's own JSON text (for JSON files the bytes as
    /// written, for binary files re-encoded), appended to `out`. False at the end.
    pub fn next_json(&mut self, out: &mut Vec<u8>) -> Result<bool, ReadError> {
        if self.next_record()?.is_none() {
            return Ok(false);
        }
        self.current_json(out)?;
        Ok(true)
    }

    /// The current record (after [`EventReader::next_record`]) as JSON text, appended.
    pub fn current_json(&self, out: &mut Vec<u8>) -> Result<(), ReadError> {
        match self.format {
            TraceFormat::Json => out.extend_from_slice(&self.raw),
            TraceFormat::Compact => out.extend_from_slice(&self.json),
            TraceFormat::Binary => {
                let event = self.decode()?;
                serde_json::to_writer(out, &event).map_err(|e| ReadError(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// The next event; `None` at the end (see [`EventReader::end`]).
    pub fn next_event(&mut self) -> Result<Option<TraceLowLevelEvent>, ReadError> {
        match self.next_record()? {
            Some(_) => self.decode().map(Some),
            None => Ok(None),
        }
    }

    fn error(&self, what: impl std::fmt::Display) -> ReadError {
        ReadError(format!("{}: {what}", self.path.display()))
    }
}

/// The kind of a JSON event: `{"Kind":…}` or, for a unit variant, `"Kind"`.
fn json_kind(raw: &[u8]) -> Option<&'static str> {
    let rest = raw.strip_prefix(b"{").unwrap_or(raw);
    let start = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = rest[start..].strip_prefix(b"\"")?;
    let close = rest.iter().position(|&b| b == b'"')?;
    kind_of(&rest[..close])
}

/// The kind of a CBOR event: a one-entry map whose key is the kind, or a text string for a
/// unit variant.
fn cbor_kind(raw: &[u8]) -> Option<&'static str> {
    let (key_at, _) = match raw.first()? >> 5 {
        5 => item_header(raw, 0)?,
        3 => (0, 0),
        _ => return None,
    };
    let (body, len) = item_header(raw, key_at)?;
    if raw.get(key_at)? >> 5 != 3 {
        return None;
    }
    kind_of(raw.get(body..body + len as usize)?)
}

/// The definite head of the CBOR item at `at`: its major type, its additional info, its
/// argument (length or value) and where its content starts. `None` when the head does not
/// fit in `buf`, or is indefinite or reserved (additional info 28–31).
#[inline]
pub(crate) fn cbor_head(buf: &[u8], at: usize) -> Option<(u8, u8, u64, usize)> {
    let first = *buf.get(at)?;
    let info = first & 0x1f;
    let (arg, next) = match info {
        0..=23 => (info as u64, at + 1),
        24..=27 => {
            let n = 1usize << (info - 24);
            let bytes = buf.get(at + 1..at + 1 + n)?;
            (
                bytes.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64),
                at + 1 + n,
            )
        }
        _ => return None,
    };
    Some((first >> 5, info, arg, next))
}

/// The header of the CBOR item at `at`: where its content starts and its argument (length
/// or value; `u64::MAX` for an indefinite length, 0 for a reserved head). `None` if the
/// header does not fit in `buf`.
#[inline]
fn item_header(buf: &[u8], at: usize) -> Option<(usize, u64)> {
    match buf.get(at)? & 0x1f {
        31 => Some((at + 1, u64::MAX)),
        28..=30 => Some((at + 1, 0)),
        _ => cbor_head(buf, at).map(|(_, _, arg, next)| (next, arg)),
    }
}

/// Where the CBOR item starting at `at` ends; `Ok(None)` if `buf` stops before it does.
fn skip_item(buf: &[u8], at: usize, depth: u32) -> Result<Option<usize>, String> {
    if depth > 512 {
        return Err("CBOR nested too deeply".into());
    }
    let Some(&first) = buf.get(at) else {
        return Ok(None);
    };
    let Some((body, arg)) = item_header(buf, at) else {
        return Ok(None);
    };
    let major = first >> 5;
    let info = first & 0x1f;
    if (28..=30).contains(&info) {
        return Err(format!("malformed CBOR header byte {first:#04x}"));
    }
    let indefinite = info == 31;
    let fits = |end: usize| if end <= buf.len() { Some(end) } else { None };
    match major {
        0 | 1 => Ok(fits(body)),
        7 => Ok(fits(body)),
        2 | 3 if !indefinite => Ok(fits(body + arg as usize)),
        6 => skip_item(buf, body, depth + 1),
        2..=5 if indefinite => {
            let mut pos = body;
            loop {
                match buf.get(pos) {
                    None => return Ok(None),
                    Some(0xff) => return Ok(Some(pos + 1)),
                    Some(_) => match skip_item(buf, pos, depth + 1)? {
                        Some(next) => pos = next,
                        None => return Ok(None),
                    },
                }
            }
        }
        4 | 5 => {
            let items = if major == 5 {
                arg.saturating_mul(2)
            } else {
                arg
            };
            let mut pos = body;
            for _ in 0..items {
                match skip_item(buf, pos, depth + 1)? {
                    Some(next) => pos = next,
                    None => return Ok(None),
                }
            }
            Ok(Some(pos))
        }
        _ => unreachable!("major type is 3 bits"),
    }
}

/// The decompressed bytes of a zstd events file (binary or compact), read in chunks.
struct Frames {
    stream: ZstdStream,
    /// Decompressed bytes; `buf[start..]` is not consumed yet.
    buf: Vec<u8>,
    start: usize,
    finished_on_disk: bool,
}

impl Frames {
    /// The next item that `parse` finds at the start of the unconsumed bytes (it returns
    /// the item and its length, or `None` when the bytes end inside it), or how the file
    /// ended.
    fn next<T>(
        &mut self,
        mut parse: impl FnMut(&[u8]) -> Result<Option<(T, usize)>, String>,
    ) -> Result<Result<T, End>, String> {
        loop {
            if self.start < self.buf.len() {
                if let Some((item, len)) = parse(&self.buf[self.start..])? {
                    self.start += len;
                    return Ok(Ok(item));
                }
            }
            // Need more bytes: keep the unconsumed tail, read another chunk.
            self.buf.drain(..self.start);
            self.start = 0;
            let have = self.buf.len();
            self.buf.resize(have + (1 << 16), 0);
            let n = self
                .stream
                .read(&mut self.buf[have..])
                .map_err(|e| e.to_string())?;
            self.buf.truncate(have + n);
            if n == 0 {
                let clean = self.buf.is_empty() && !self.stream.cut;
                return Ok(Err(if clean && self.finished_on_disk {
                    End::Complete
                } else if self.buf.is_empty() {
                    End::Truncated("the events file ends without its seek table".into())
                } else {
                    End::Truncated("the events file is cut inside an event".into())
                }));
            }
        }
    }
}

/// The CBOR records of a binary events file, found by walking each item's structure (so an
/// event cut by the end of the file is told from a whole one).
struct CborRecords {
    frames: Frames,
}

impl CborRecords {
    fn next_record(&mut self, out: &mut Vec<u8>) -> Result<Element, String> {
        let got = self.frames.next(|buf| {
            Ok(skip_item(buf, 0, 0)?.map(|end| {
                out.extend_from_slice(&buf[..end]);
                ((), end)
            }))
        })?;
        Ok(match got {
            Ok(()) => Element::Event,
            Err(end) => Element::End(end),
        })
    }

    /// The next record: read in place when it has a frequent shape (`Some`), else its
    /// bytes appended to `out` (`None`).
    fn next_fast(
        &mut self,
        out: &mut Vec<u8>,
        args: &mut Vec<(u32, Val)>,
    ) -> Result<Result<Option<Fast>, End>, String> {
        self.frames.next(|buf| {
            if let Some((fast, len)) = cbor_fast_prefix(buf, args) {
                return Ok(Some((Some(fast), len)));
            }
            Ok(skip_item(buf, 0, 0)?.map(|end| {
                out.extend_from_slice(&buf[..end]);
                (None, end)
            }))
        })
    }
}

/// The records of a compact events file ([`super::compact`]).
struct CompactRecords {
    frames: Frames,
    decoder: CompactDecoder,
    /// Turns records into binary v1 events for [`EventReader::decode`], and into JSON text
    /// for [`EventReader::current_json`].
    cbor: RecordEncoder,
    json: RecordEncoder,
}

impl CompactRecords {
    fn next_rec(&mut self) -> Result<Result<Rec, End>, String> {
        let decoder = &mut self.decoder;
        self.frames.next(|buf| decoder.decode(buf))
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

enum Element {
    Event,
    End(End),
}

/// Splits a JSON array into its elements without parsing them: a byte scan that tracks
/// nesting and strings. The recorder writes one event per line, but any layout of a JSON
/// array of events (e.g. `runtime_tracing`'s own writer's) reads the same.
struct JsonElements {
    input: BufReader<File>,
    started: bool,
}

impl JsonElements {
    fn new(file: File) -> Self {
        JsonElements {
            input: BufReader::with_capacity(1 << 16, file),
            started: false,
        }
    }

    /// The next byte that is not whitespace, consumed; `None` at end of file.
    fn next_token(&mut self) -> io::Result<Option<u8>> {
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                return Ok(None);
            }
            match buf.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(i) => {
                    let b = buf[i];
                    self.input.consume(i + 1);
                    return Ok(Some(b));
                }
                None => {
                    let n = buf.len();
                    self.input.consume(n);
                }
            }
        }
    }

    /// The next element when it is a record of a frequent shape that lies whole in the
    /// buffered bytes, read in place and consumed with the separator before it; else
    /// `None` and nothing consumed (the first element, one that crosses the end of the
    /// buffer and any other go through [`JsonElements::next_element`]).
    fn try_fast(&mut self, args: &mut Vec<(u32, Val)>) -> io::Result<Option<Fast>> {
        if !self.started {
            return Ok(None);
        }
        let buf = self.input.fill_buf()?;
        let ws = |from: usize| {
            buf[from..]
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .map(|i| from + i)
        };
        let Some(comma) = ws(0) else {
            return Ok(None);
        };
        if buf[comma] != b',' {
            return Ok(None);
        }
        let Some(start) = ws(comma + 1) else {
            return Ok(None);
        };
        match json_fast_prefix(&buf[start..], args) {
            Some((fast, len)) => {
                self.input.consume(start + len);
                Ok(Some(fast))
            }
            None => Ok(None),
        }
    }

    fn next_element(&mut self, out: &mut Vec<u8>) -> Result<Element, String> {
        let cut = |what: &str| Ok(Element::End(End::Truncated(what.to_owned())));
        let io = |e: io::Error| e.to_string();
        let mut first = self.next_token().map_err(io)?;
        if !self.started {
            match first {
                Some(b'[') => self.started = true,
                None => return cut("the events file is empty"),
                Some(_) => return Err("not a JSON array of events".into()),
            }
            first = self.next_token().map_err(io)?;
            if first == Some(b']') {
                return Ok(Element::End(End::Complete));
            }
        } else {
            match first {
                Some(b',') => first = self.next_token().map_err(io)?,
                Some(b']') => return Ok(Element::End(End::Complete)),
                None => return cut("the events file ends without the closing ']'"),
                Some(c) => return Err(format!("unexpected {:?} between events", c as char)),
            }
        }
        let Some(first) = first else {
            return cut("the events file ends after a ','");
        };
        let start = out.len();
        out.push(first);
        let mut depth: u32 = match first {
            b'{' | b'[' => 1,
            b'"' => 0,
            _ => {
                return Err(format!(
                    "unexpected {:?} where an event starts",
                    first as char
                ))
            }
        };
        let mut in_string = first == b'"';
        let mut escaped = false;
        loop {
            let buf = self.input.fill_buf().map_err(io)?;
            if buf.is_empty() {
                out.truncate(start);
                return cut("the events file is cut inside an event");
            }
            let mut taken = buf.len();
            let mut done = false;
            for (i, &b) in buf.iter().enumerate() {
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                        if depth == 0 {
                            done = true;
                        }
                    }
                } else {
                    match b {
                        b'"' => in_string = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                done = true;
                            }
                        }
                        _ => {}
                    }
                }
                if done {
                    taken = i + 1;
                    break;
                }
            }
            out.extend_from_slice(&buf[..taken]);
            self.input.consume(taken);
            if done {
                return Ok(Element::Event);
            }
        }
    }
}

/// A `Read` over the zstd frames of a binary events file, which stops cleanly where the
/// file is cut (and says so in `cut`) instead of failing.
struct ZstdStream {
    file: File,
    dctx: zstd_safe::DCtx<'static>,
    input: Vec<u8>,
    pos: usize,
    len: usize,
    /// The last call's hint: 0 when a frame has just ended.
    in_frame: bool,
    cut: bool,
}

impl ZstdStream {
    fn new(file: File) -> Result<Self, ReadError> {
        let mut dctx = zstd_safe::DCtx::try_create()
            .ok_or_else(|| ReadError("cannot create a zstd decoder".into()))?;
        dctx.init()
            .map_err(|c| ReadError(zstd_safe::get_error_name(c).to_owned()))?;
        Ok(ZstdStream {
            file,
            dctx,
            input: vec![0; zstd_safe::DCtx::in_size()],
            pos: 0,
            len: 0,
            in_frame: false,
            cut: false,
        })
    }
}

impl Read for ZstdStream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.pos == self.len {
                self.len = self.file.read(&mut self.input)?;
                self.pos = 0;
                if self.len == 0 {
                    self.cut = self.in_frame;
                    return Ok(0);
                }
            }
            let mut src = zstd_safe::InBuffer::around(&self.input[self.pos..self.len]);
            let mut dst = zstd_safe::OutBuffer::around(&mut *out);
            let hint = self
                .dctx
                .decompress_stream(&mut dst, &mut src)
                .map_err(|c| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("zstd: {}", zstd_safe::get_error_name(c)),
                    )
                })?;
            self.pos += src.pos();
            self.in_frame = hint != 0;
            let produced = dst.pos();
            if produced > 0 {
                return Ok(produced);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::EventSink;
    use runtime_tracing::{
        CallRecord, FullValueRecord, FunctionId, FunctionRecord, Line, PathId, ReturnRecord,
        StepRecord, TypeId, ValueRecord, VariableId,
    };
    // (`Fast`, `Next`, `Val` come in through `super::*`.)

    /// A mixed stream: paths, functions, calls with values, steps, returns, strings that
    /// need escaping (quotes, brackets, backslashes, non-ASCII).
    fn sample(n: usize) -> Vec<TraceLowLevelEvent> {
        let mut v = vec![
            TraceLowLevelEvent::Path("/app/p \"q\" [x].py".into()),
            TraceLowLevelEvent::Function(FunctionRecord {
                name: "f{}\\".into(),
                path_id: PathId(0),
                line: Line(1),
            }),
            TraceLowLevelEvent::VariableName("é".into()),
        ];
        for i in 0..n {
            let value = ValueRecord::String {
                text: format!("s\"]}}{i}\\"),
                type_id: TypeId(1),
            };
            v.push(TraceLowLevelEvent::Call(CallRecord {
                function_id: FunctionId(0),
                args: vec![FullValueRecord {
                    variable_id: VariableId(0),
                    value: value.clone(),
                }],
            }));
            v.push(TraceLowLevelEvent::Step(StepRecord {
                path_id: PathId(0),
                line: Line(i as i64),
            }));
            v.push(TraceLowLevelEvent::Return(ReturnRecord {
                return_value: value,
            }));
            if i % 1000 == 0 {
                v.push(TraceLowLevelEvent::DropLastStep);
            }
        }
        v
    }

    fn as_json(events: &[TraceLowLevelEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect()
    }

    fn write(dir: &Path, format: TraceFormat, events: &[TraceLowLevelEvent]) -> PathBuf {
        let mut sink = EventSink::create(dir, format, "p.py", &[]).unwrap();
        for e in events {
            sink.push(e.clone());
        }
        assert_eq!(sink.finish().unwrap(), events.len() as u64);
        dir.join(format.events_file_name())
    }

    fn read_all(path: &Path) -> (Vec<TraceLowLevelEvent>, End) {
        let mut r = EventReader::open(path).unwrap();
        let mut out = Vec::new();
        while let Some(e) = r.next_event().unwrap() {
            out.push(e);
        }
        (out, r.end().cloned().unwrap())
    }

    #[test]
    fn every_format_reads_back_whole_with_our_reader_and_the_formats_own() {
        let events = sample(10_000);
        for format in TraceFormat::ALL {
            let dir = tempfile::tempdir().unwrap();
            let file = write(dir.path(), format, &events);
            let (ours, end) = read_all(dir.path());
            assert_eq!(end, End::Complete, "{format:?}");
            assert_eq!(as_json(&ours), as_json(&events), "{format:?}");
            // The JSON text the Python reader gets is serde's, whatever the format.
            let mut r = EventReader::open(dir.path()).unwrap();
            let mut texts = Vec::new();
            let mut text = Vec::new();
            while r.next_json(&mut text).unwrap() {
                texts.push(String::from_utf8(std::mem::take(&mut text)).unwrap());
            }
            assert_eq!(texts, as_json(&events), "{format:?}");
            // The compact format is the recorder's own: it reaches the format's reader
            // through a conversion (tested in `convert`).
            let theirs = match format {
                TraceFormat::Json => runtime_tracing::TraceEventsFileFormat::Json,
                TraceFormat::Binary => runtime_tracing::TraceEventsFileFormat::Binary,
                TraceFormat::Compact => continue,
            };
            let crate_read = runtime_tracing::create_trace_reader(theirs)
                .load_trace_events(&file)
                .unwrap();
            assert_eq!(as_json(&crate_read), as_json(&events), "{format:?}");
        }
    }

    #[test]
    fn a_file_cut_at_any_byte_reads_a_prefix_and_says_it_is_truncated() {
        let events = sample(300);
        for format in TraceFormat::ALL {
            let dir = tempfile::tempdir().unwrap();
            let file = write(dir.path(), format, &events);
            let bytes = std::fs::read(&file).unwrap();
            let want = as_json(&events);
            let cut_path = dir.path().join(format!(
                "cut.{}",
                file.extension().unwrap().to_str().unwrap()
            ));
            // Where the closing record starts (JSON: the final "]\n").
            let closed_from = match format {
                TraceFormat::Json => bytes.len() - 2,
                TraceFormat::Binary | TraceFormat::Compact => bytes.len(),
            };
            let step = (bytes.len() / 400).max(1);
            let mut cuts: Vec<usize> = (0..closed_from).step_by(step).collect();
            cuts.extend(closed_from.saturating_sub(12)..closed_from);
            let mut last = 0;
            for cut in cuts {
                std::fs::write(&cut_path, &bytes[..cut]).unwrap();
                let (got, end) = read_all(&cut_path);
                assert!(matches!(end, End::Truncated(_)), "{format:?} cut at {cut}");
                assert_eq!(
                    as_json(&got)[..],
                    want[..got.len()],
                    "{format:?} cut at {cut}"
                );
                assert!(got.len() >= last, "{format:?} cut at {cut}");
                last = got.len();
            }
        }
    }

    /// Steps, calls with scalar arguments, their `Value` events and returns (the records
    /// `next_fast` reads in place), among records it leaves to the scan: strings holding
    /// what ends a record (`}`, `]`, quotes, `},{"Step":…`), a float (JSON) and a string
    /// value, and widths that vary so that records cross every read-buffer boundary.
    fn sample_fast(n: usize) -> Vec<TraceLowLevelEvent> {
        let mut v = sample(2);
        for i in 0..n {
            let int = |k: i64| ValueRecord::Int {
                i: k,
                type_id: TypeId(1),
            };
            let value = match i % 7 {
                0 => ValueRecord::None { type_id: TypeId(2) },
                1 => ValueRecord::Bool {
                    b: i % 2 == 0,
                    type_id: TypeId(3),
                },
                2 => ValueRecord::Float {
                    f: i as f64 / 3.0,
                    type_id: TypeId(4),
                },
                3 => ValueRecord::String {
                    text: format!("}}]\",\n{{\"Step\":{{\"path_id\":{i}}}}}"),
                    type_id: TypeId(5),
                },
                _ => int(-(i as i64).pow(2)),
            };
            let arg = FullValueRecord {
                variable_id: VariableId(i % 300),
                value: value.clone(),
            };
            v.push(TraceLowLevelEvent::Value(arg.clone()));
            v.push(TraceLowLevelEvent::Call(CallRecord {
                function_id: FunctionId(i % 1000),
                args: vec![arg; i % 3],
            }));
            v.push(TraceLowLevelEvent::Step(StepRecord {
                path_id: PathId(i % 5),
                line: Line((i * 7919 % 100_003) as i64 - 50),
            }));
            v.push(TraceLowLevelEvent::Return(ReturnRecord {
                return_value: value,
            }));
            if i % 500 == 0 {
                v.push(TraceLowLevelEvent::Path(format!("/p/{i}\"}},").into()));
            }
        }
        v
    }

    /// What a reader reads, record by record, as text: `next_fast`'s records, or
    /// `next_record`'s, each followed by the exact-bytes readers when it is bytes (as
    /// `TraceEvents` reads it after finding its end: what `next_fast` leaves as bytes
    /// because it crosses the end of the read buffer), with how the file ended and how
    /// many records `next_fast` read in place.
    fn read_both_ways(path: &Path, fast: bool) -> (Vec<String>, Option<End>, usize) {
        use crate::writer::py_events::{cbor_fast, json_fast};
        let show = |f: &Fast, args: &[(u32, Val)]| match f {
            Fast::Step { path, line } => format!("step {path} {line}"),
            Fast::Value { variable, value } => format!("value {variable} {value:?}"),
            Fast::Call { function } => format!("call {function} {args:?}"),
            Fast::Return(value) => format!("return {value:?}"),
        };
        let mut r = EventReader::open(path).unwrap();
        let binary = r.format() == TraceFormat::Binary;
        let mut out = Vec::new();
        let mut args = Vec::new();
        let mut in_place = 0;
        loop {
            let kind = if fast {
                match r.next_fast(&mut args) {
                    Ok(Some(Next::Fast(f))) => {
                        in_place += 1;
                        out.push(show(&f, &args));
                        continue;
                    }
                    Ok(Some(Next::Raw(kind))) => Ok(kind),
                    Ok(None) => break,
                    Err(e) => Err(e),
                }
            } else {
                match r.next_record() {
                    Ok(Some(kind)) => Ok(kind),
                    Ok(None) => break,
                    Err(e) => Err(e),
                }
            };
            let got = match kind {
                Ok(kind) => {
                    let f = if binary {
                        cbor_fast(r.raw(), &mut args)
                    } else {
                        json_fast(r.raw(), &mut args)
                    };
                    match f {
                        Some(f) => show(&f, &args),
                        None => format!("{kind} {:?}", r.raw()),
                    }
                }
                Err(e) => format!("error {e}"),
            };
            let error = got.starts_with("error");
            out.push(got);
            if error {
                break;
            }
        }
        (out, r.end().cloned(), in_place)
    }

    #[test]
    fn next_fast_reads_what_the_scan_and_the_exact_readers_read_whole_or_cut() {
        let events = sample_fast(4000);
        for format in [TraceFormat::Json, TraceFormat::Binary] {
            let dir = tempfile::tempdir().unwrap();
            let file = write(dir.path(), format, &events);
            let (want, end, _) = read_both_ways(&file, false);
            assert_eq!(want.len(), events.len(), "{format:?}");
            assert_eq!(end, Some(End::Complete), "{format:?}");
            let (got, got_end, in_place) = read_both_ways(&file, true);
            assert_eq!((got, got_end), (want, end), "{format:?}");
            // Most records are read in place: the comparison covers that path.
            assert!(
                in_place > events.len() / 2,
                "{format:?}: {in_place} in place"
            );
            let bytes = std::fs::read(&file).unwrap();
            let cut_path = dir.path().join(format!(
                "cut.{}",
                file.extension().unwrap().to_str().unwrap()
            ));
            let mut cuts: Vec<usize> = (0..bytes.len()).step_by(bytes.len() / 97).collect();
            // Every byte of a few records, inside numbers and literals, near the start
            // and past the first read buffer's end.
            cuts.extend(1..300);
            cuts.extend((1 << 16) - 150..(1 << 16) + 150);
            for cut in cuts {
                std::fs::write(&cut_path, &bytes[..cut]).unwrap();
                let (slow, end, _) = read_both_ways(&cut_path, false);
                assert!(
                    matches!(end, None | Some(End::Truncated(_))),
                    "{format:?} {cut}"
                );
                let (got, got_end, _) = read_both_ways(&cut_path, true);
                assert_eq!((got, got_end), (slow, end), "{format:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn events_reach_the_file_while_the_recorder_is_idle() {
        for format in [TraceFormat::Json, TraceFormat::Binary] {
            let dir = tempfile::tempdir().unwrap();
            let mut sink = EventSink::create(dir.path(), format, "p.py", &[]).unwrap();
            // Far fewer than a batch: only the writer thread's clock can take them to disk.
            let events = sample(5);
            for e in &events {
                sink.push(e.clone());
            }
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                let (got, end) = read_all(dir.path());
                if got.len() == events.len() {
                    assert!(matches!(end, End::Truncated(_)));
                    assert_eq!(as_json(&got), as_json(&events));
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{format:?}: never flushed"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            sink.finish().unwrap();
            assert_eq!(read_all(dir.path()).1, End::Complete);
        }
    }

    #[test]
    fn not_a_trace_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("trace.bin");
        std::fs::write(&bin, b"hello world, not zstd").unwrap();
        assert!(EventReader::open(&bin).is_err());
        let json = dir.path().join("x.json");
        std::fs::write(&json, b"{\"a\": 1}").unwrap();
        let mut r = EventReader::open(&json).unwrap();
        assert!(r.next_event().is_err());
        assert!(EventReader::open(&dir.path().join("missing")).is_err());
    }
}
