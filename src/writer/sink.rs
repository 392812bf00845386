//! The writer thread and the on-disk formats.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use runtime_tracing::TraceLowLevelEvent;

use super::compact::{CompactEncoder, COMPACT_HEADER_V1};
use super::record::{Rec, RecordEncoder};
use super::slab::Slab;
use super::{BATCH_EVENTS, BATCH_POOL, FLUSH_INTERVAL, MAX_BATCHES_IN_FLIGHT};

/// zstd level of the zstd formats: the fastest, so that the writer thread keeps up.
const ZSTD_LEVEL: i32 = 1;

/// The first 8 bytes of a binary v1 events file (`C0DE72ACE2`, version 1, two reserved
/// zero bytes), as `runtime_tracing`'s reader checks them.
pub const BINARY_HEADER_V1: &[u8; 8] = &[0xC0, 0xDE, 0x72, 0xAC, 0xE2, 0x01, 0x00, 0x00];

/// Which events file to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceFormat {
    /// `trace.json`: a JSON array of events (streamed, readable by `runtime_tracing`).
    Json,
    /// `trace.bin`: CBOR records in a zstd stream (`runtime_tracing` binary v1).
    Binary,
    /// `trace.ctc`: the recorder's records as tagged varints in a zstd stream
    /// ([`super::compact`]); converts to the other two event for event.
    Compact,
}

impl TraceFormat {
    /// Every format, in the order a trace directory is searched for its events file.
    pub const ALL: [TraceFormat; 3] =
        [TraceFormat::Json, TraceFormat::Binary, TraceFormat::Compact];

    pub fn events_file_name(self) -> &'static str {
        match self {
            TraceFormat::Json => "trace.json",
            TraceFormat::Binary => "trace.bin",
            TraceFormat::Compact => "trace.ctc",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TraceFormat::Json => "json",
            TraceFormat::Binary => "binary",
            TraceFormat::Compact => "compact",
        }
    }

    /// The format named `name` (`json`, `binary`, `compact`), or an error that lists them.
    pub fn parse(name: &str) -> Result<TraceFormat, String> {
        TraceFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<String> = TraceFormat::ALL
                    .iter()
                    .map(|f| format!("'{}'", f.as_str()))
                    .collect();
                format!(
                    "unknown trace format {name:?} (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

#[derive(Debug)]
pub struct WriterError(pub String);

impl std::fmt::Display for WriterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WriterError {}

/// `--max-trace-size`: the events file's size cap, shared by the writer thread, which checks
/// the file's size after each batch it writes, and the recording thread, which reads
/// [`SizeCap::is_reached`] (one atomic load, every few hundred callbacks: the tracer's
/// `SIZE_CAP_POLL`) to stop recording. The file may thus pass the cap by at most one batch
/// ([`super::BATCH_EVENTS`] events) plus the bytes that close the file; what the recording
/// thread appends after that is dropped.
#[derive(Debug, Default)]
pub struct SizeCap {
    /// The cap in bytes; 0: none.
    limit: AtomicU64,
    reached: AtomicBool,
    /// Set before `reached`: the events in the file and its size once closed at the cap.
    events: AtomicU64,
    bytes: AtomicU64,
}

/// Where the events file was cut by the size cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TraceCut {
    /// Events in the file: it ends after the batch that reached the cap.
    pub events: u64,
    /// The file's size, closed (what is on disk).
    pub bytes: u64,
}

impl SizeCap {
    /// The cap in bytes, `None` for no cap.
    pub fn limit(&self) -> Option<u64> {
        Some(self.limit.load(Ordering::Relaxed)).filter(|&n| n > 0)
    }

    /// Whether the events file reached the cap (and was closed there).
    #[inline]
    pub fn is_reached(&self) -> bool {
        self.reached.load(Ordering::Acquire)
    }

    /// Where the file was cut, once the cap is reached.
    pub fn cut(&self) -> Option<TraceCut> {
        self.is_reached().then(|| TraceCut {
            events: self.events.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        })
    }

    fn reach(&self, cut: TraceCut) {
        self.events.store(cut.events, Ordering::Relaxed);
        self.bytes.store(cut.bytes, Ordering::Relaxed);
        self.reached.store(true, Ordering::Release);
    }
}

enum Message {
    Batch(Arc<Slab>),
    Finish,
}

/// The recording thread's end of the writer: the batch being filled, recycled batches, the
/// channel to the writer thread.
pub struct EventSink {
    tx: Option<Sender<Message>>,
    /// Emptied batches coming back from the writer thread: in steady state the recording
    /// thread reuses them and allocates nothing per event.
    recycled: Receiver<Arc<Slab>>,
    /// Batches created so far; at most [`BATCH_POOL`], then batches are reused.
    buffers: usize,
    handle: Option<JoinHandle<Result<u64, String>>>,
    /// The batch being filled. The writer thread reads its published prefix on its own
    /// clock (see [`super::slab`]), through `shared`.
    current: Arc<Slab>,
    /// Events pushed into `current`.
    filled: usize,
    /// `current.seq()`.
    seq: u64,
    shared: Arc<Mutex<Arc<Slab>>>,
    events_path: PathBuf,
    cap: Arc<SizeCap>,
}

impl EventSink {
    /// Opens `dir/<events file>` and starts the writer thread. Fails before anything is
    /// recorded if the file cannot be created.
    pub fn create(
        dir: &Path,
        format: TraceFormat,
        _program: &str,
        _args: &[String],
    ) -> Result<Self, WriterError> {
        let events_path = dir.join(format.events_file_name());
        let (tx, rx) = bounded::<Message>(MAX_BATCHES_IN_FLIGHT);
        let (give_back, recycled) = bounded::<Arc<Slab>>(BATCH_POOL);
        let first = Arc::new(Slab::new(BATCH_EVENTS));
        let shared = Arc::new(Mutex::new(first.clone()));
        // The output is opened on the writer thread; the open result comes back first so a
        // bad path fails before anything is recorded.
        let (ready_tx, ready_rx) = bounded::<Result<(), String>>(1);
        let path = events_path.clone();
        let writer_shared = shared.clone();
        let cap = Arc::new(SizeCap::default());
        let writer_cap = cap.clone();
        let handle = std::thread::Builder::new()
            .name("ct-trace-writer".into())
            .spawn(move || {
                let output = match Output::open(&path, format) {
                    Ok(output) => {
                        let _ = ready_tx.send(Ok(()));
                        output
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return Err(e.to_string());
                    }
                };
                writer_loop(output, rx, give_back, writer_shared, &path, &writer_cap)
                    .map_err(|e| e.to_string())
            })
            .map_err(|e| WriterError(format!("cannot start the trace writer thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = handle.join();
                return Err(WriterError(format!(
                    "cannot create {}: {e}",
                    events_path.display()
                )));
            }
            Err(_) => {
                return Err(WriterError(
                    "the trace writer thread died while opening its file".into(),
                ))
            }
        }
        Ok(EventSink {
            tx: Some(tx),
            recycled,
            buffers: 1,
            handle: Some(handle),
            current: first,
            filled: 0,
            seq: 0,
            shared,
            events_path,
            cap,
        })
    }

    pub fn events_path(&self) -> &Path {
        &self.events_path
    }

    /// Caps the events file at `bytes` (`None`: no cap); see [`SizeCap`].
    pub fn set_max_bytes(&self, bytes: Option<u64>) {
        self.cap.limit.store(bytes.unwrap_or(0), Ordering::Relaxed);
    }

    /// The size cap, as the recording thread watches it.
    pub fn size_cap(&self) -> &Arc<SizeCap> {
        &self.cap
    }

    /// Appends any event (a compact record where it has that shape).
    pub fn push(&mut self, event: TraceLowLevelEvent) {
        self.push_rec(Rec::from_event(event));
    }

    /// Appends one record: the hot path (a slot write and a release store).
    #[inline(always)]
    pub fn push_rec(&mut self, event: Rec) {
        // SAFETY: this is the recording thread's current slab and `filled` its count; the
        // slab is shipped as soon as it is full, so `filled` stays below the capacity.
        unsafe { self.current.push(self.filled, event) };
        self.filled += 1;
        if self.filled >= BATCH_EVENTS {
            self.ship();
        }
    }

    fn ship(&mut self) {
        if self.filled == 0 {
            return;
        }
        // A recycled batch if one is back; a new one while the pool is not full; else wait
        // for the writer to hand one back (back-pressure, as the bounded queue gives).
        let fresh = match self.recycled.try_recv() {
            Ok(v) => v,
            Err(_) if self.buffers < BATCH_POOL => {
                self.buffers += 1;
                Arc::new(Slab::new(BATCH_EVENTS))
            }
            Err(_) => self
                .recycled
                .recv()
                .unwrap_or_else(|_| Arc::new(Slab::new(BATCH_EVENTS))),
        };
        self.seq += 1;
        fresh.set_seq(self.seq);
        let full = std::mem::replace(&mut self.current, fresh);
        self.filled = 0;
        // Ship first, then make the fresh batch visible: the writer thread, seeing the
        // fresh one, knows every earlier batch is already in its queue.
        if let Some(tx) = &self.tx {
            // A send only fails when the writer thread died; its error surfaces at finish().
            let _ = tx.send(Message::Batch(full));
        }
        if let Ok(mut g) = self.shared.lock() {
            *g = self.current.clone();
        }
    }

    /// Hands over what is buffered without closing the file. (The writer thread also
    /// writes the published part of the current batch on its own clock; this makes it
    /// immediate, e.g. on a fatal signal.)
    pub fn flush(&mut self) {
        self.ship();
    }

    /// Writes the remaining events, closes the events file and returns how many events it
    /// holds.
    pub fn finish(&mut self) -> Result<u64, WriterError> {
        self.ship();
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Message::Finish);
        }
        match self.handle.take() {
            Some(handle) => match handle.join() {
                Ok(Ok(n)) => Ok(n),
                Ok(Err(e)) => Err(WriterError(format!(
                    "writing {}: {e}",
                    self.events_path.display()
                ))),
                Err(_) => Err(WriterError("the trace writer thread panicked".into())),
            },
            None => Ok(0),
        }
    }
}

impl Drop for EventSink {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// The writer thread: batches in order, each written and flushed to the file as it comes
/// (when no other batch is queued behind it), and on every tick of [`FLUSH_INTERVAL`] the
/// published part of the batch the recording thread is still filling.
fn writer_loop(
    output: Output,
    rx: Receiver<Message>,
    give_back: Sender<Arc<Slab>>,
    shared: Arc<Mutex<Arc<Slab>>>,
    path: &Path,
    cap: &SizeCap,
) -> std::io::Result<u64> {
    let mut written = 0u64;
    // `None` once the file was closed at the size cap: later batches are recycled unwritten.
    let mut output = Some(output);
    // The batch to write next, and how much of it an earlier tick wrote already.
    let mut next_seq = 0u64;
    let mut done_in_next = 0usize;
    let mut dirty = false;
    let mut last_flush = Instant::now();
    loop {
        let wait = FLUSH_INTERVAL.saturating_sub(last_flush.elapsed());
        match rx.recv_timeout(wait) {
            Ok(Message::Batch(slab)) => {
                debug_assert_eq!(slab.seq(), next_seq);
                if let Some(out) = output.as_mut() {
                    let events = &slab.published()[done_in_next..];
                    out.write_events(events)?;
                    written += events.len() as u64;
                    dirty = true;
                }
                next_seq += 1;
                done_in_next = 0;
                // SAFETY: the recording thread shipped the slab; `events` is not used
                // past this point.
                unsafe { slab.clear() };
                let _ = give_back.try_send(slab);
                if let Some(out) = output.as_mut() {
                    if rx.is_empty() {
                        out.flush()?;
                        dirty = false;
                        last_flush = Instant::now();
                    }
                    tracing::debug!(
                        total_events = written,
                        bytes_on_disk = file_len(path),
                        "trace writer: batch written"
                    );
                }
                close_at_cap(&mut output, cap, written, path)?;
            }
            Ok(Message::Finish) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                if let Some(out) = output.as_mut() {
                    let current = shared.lock().map(|g| g.clone()).ok();
                    if let Some(slab) = current.filter(|s| s.seq() == next_seq) {
                        let events = &slab.published()[done_in_next..];
                        if !events.is_empty() {
                            out.write_events(events)?;
                            written += events.len() as u64;
                            done_in_next += events.len();
                            dirty = true;
                        }
                    }
                    if dirty {
                        out.flush()?;
                        dirty = false;
                    }
                    close_at_cap(&mut output, cap, written, path)?;
                }
                last_flush = Instant::now();
            }
        }
    }
    if let Some(out) = output {
        out.finish()?;
    }
    tracing::info!(
        events = written,
        bytes = file_len(path),
        path = %path.display(),
        "trace writer: events file closed"
    );
    Ok(written)
}

/// After a write: when the file has reached the size cap, closes it (whole and readable from
/// this moment, even if the process is killed later) and tells the recording thread.
fn close_at_cap(
    output: &mut Option<Output>,
    cap: &SizeCap,
    written: u64,
    path: &Path,
) -> std::io::Result<()> {
    let (Some(limit), Some(out)) = (cap.limit(), output.as_mut()) else {
        return Ok(());
    };
    if !out.reached(limit)? {
        return Ok(());
    }
    if let Some(out) = output.take() {
        out.finish()?;
    }
    let cut = TraceCut {
        events: written,
        bytes: file_len(path),
    };
    tracing::info!(
        limit,
        events = cut.events,
        bytes = cut.bytes,
        path = %path.display(),
        "trace writer: size cap reached, events file closed"
    );
    cap.reach(cut);
    Ok(())
}

/// The events file's size so far (what the writer has handed to the OS).
fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// An events file being written: the writer thread's (and the converter's) end.
pub(crate) enum Output {
    Json {
        out: BufWriter<File>,
        first: bool,
        records: RecordEncoder,
    },
    /// A header, then the records in seekable zstd: the format's binary v1 layout (CBOR
    /// records) or the compact one (tagged varints). Written here rather than through
    /// `runtime_tracing`'s writer so that every flush ends a zstd frame: a cut file then
    /// decodes up to its last flush.
    Zstd {
        enc: zeekstd::Encoder<'static, BufWriter<File>>,
        header: &'static [u8; 8],
        buf: Vec<u8>,
        records: Payload,
        /// Raw bytes given to the encoder since its last flush (for the size cap).
        pending: u64,
    },
}

/// How the zstd formats encode their records.
pub(crate) enum Payload {
    Cbor(RecordEncoder),
    Compact(CompactEncoder),
}

impl Output {
    pub(crate) fn open(path: &Path, format: TraceFormat) -> std::io::Result<Self> {
        let mut out = BufWriter::with_capacity(1 << 16, File::create(path)?);
        let (header, records) = match format {
            TraceFormat::Json => {
                out.write_all(b"[")?;
                return Ok(Output::Json {
                    out,
                    first: true,
                    records: RecordEncoder::new(),
                });
            }
            TraceFormat::Binary => (BINARY_HEADER_V1, Payload::Cbor(RecordEncoder::new())),
            TraceFormat::Compact => (COMPACT_HEADER_V1, Payload::Compact(CompactEncoder::new())),
        };
        out.write_all(header)?;
        // On disk at once: a run killed before its first flush still leaves a file that
        // reads as a (truncated, empty) trace of its format.
        out.flush()?;
        let enc = zeekstd::EncodeOptions::new()
            .compression_level(ZSTD_LEVEL)
            .into_encoder(out)
            .map_err(std::io::Error::other)?;
        Ok(Output::Zstd {
            enc,
            header,
            buf: Vec::with_capacity(1 << 16),
            records,
            pending: 0,
        })
    }

    pub(crate) fn write_events(&mut self, events: &[Rec]) -> std::io::Result<()> {
        match self {
            Output::Json {
                out,
                first,
                records,
            } => {
                for event in events {
                    if !*first {
                        out.write_all(b",\n")?;
                    }
                    *first = false;
                    records.json(out, event)?;
                }
                Ok(())
            }
            Output::Zstd {
                enc,
                buf,
                records,
                pending,
                ..
            } => {
                buf.clear();
                match records {
                    Payload::Cbor(records) => {
                        for event in events {
                            records.cbor(buf, event)?;
                        }
                    }
                    Payload::Compact(records) => {
                        for event in events {
                            records.encode(buf, event)?;
                        }
                    }
                }
                *pending += buf.len() as u64;
                enc.write_all(buf)
            }
        }
    }

    /// Whether the events file has reached `limit` bytes. JSON: on disk plus what waits in
    /// our buffer. Zstd: the compressor holds back output (up to its buffer), so the
    /// compressed bytes so far plus the raw bytes given to it since the last flush are an
    /// upper bound; only when that bound reaches the limit is the frame ended (a flush) to
    /// count exactly, which happens just before the cap.
    fn reached(&mut self, limit: u64) -> std::io::Result<bool> {
        match self {
            Output::Json { out, .. } => {
                Ok(out.get_ref().metadata()?.len() + out.buffer().len() as u64 >= limit)
            }
            Output::Zstd {
                enc,
                pending,
                header,
                ..
            } => {
                let header = header.len() as u64;
                if header + enc.written_compressed() + *pending < limit {
                    return Ok(false);
                }
                self.flush()?;
                match self {
                    Output::Zstd { enc, .. } => Ok(header + enc.written_compressed() >= limit),
                    Output::Json { .. } => unreachable!(),
                }
            }
        }
    }

    /// Everything written so far reaches the file (the OS), decodable on its own.
    pub(crate) fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::Json { out, .. } => out.flush(),
            Output::Zstd { enc, pending, .. } => {
                *pending = 0;
                enc.end_frame().map_err(std::io::Error::other)?;
                enc.flush()
            }
        }
    }

    /// Closes the file with its closing record: it then reads as a finished trace.
    pub(crate) fn finish(self) -> std::io::Result<()> {
        match self {
            Output::Json { mut out, .. } => {
                out.write_all(b"]\n")?;
                out.flush()?;
                out.into_inner().map_err(|e| e.into_error())?.sync_data()
            }
            Output::Zstd { enc, .. } => {
                // Ends the last frame and appends the seek table the format's reader uses.
                enc.finish().map(|_| ()).map_err(std::io::Error::other)
            }
        }
    }

    /// Writes out everything but leaves the closing record off, so that the file reads
    /// as the trace of a run that did not finish (what the converter does with one).
    pub(crate) fn close_unfinished(mut self) -> std::io::Result<()> {
        self.flush()?;
        match self {
            Output::Json { out, .. } => out.into_inner().map_err(|e| e.into_error())?.sync_data(),
            // The encoder writes its seek table only in `finish`; dropping it after the
            // flush leaves the file as it is.
            Output::Zstd { .. } => Ok(()),
        }
    }
}

/// Writes `contents` to `path` through a temporary file and a rename, so readers never see
/// a half-written file.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    fs::write(&tmp, contents)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime_tracing::{Line, PathId, StepRecord};

    #[test]
    fn hand_written_step_json_is_byte_identical_to_serde() {
        for (p, l) in [
            (0usize, 0i64),
            (7, 1),
            (123456, -5),
            (usize::MAX >> 1, i64::MAX),
            (3, i64::MIN),
        ] {
            let ev = TraceLowLevelEvent::Step(StepRecord {
                path_id: PathId(p),
                line: Line(l),
            });
            let mut ours = Vec::new();
            RecordEncoder::new()
                .json(&mut ours, &Rec::from_event(ev.clone()))
                .unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&ev).unwrap()
            );
        }
    }

    #[test]
    fn hand_written_step_cbor_is_byte_identical_to_serde() {
        for (p, l) in [
            (0usize, 0i64),
            (23, 23),
            (24, 24),
            (255, 256),
            (65535, 65536),
            (1 << 40, -1),
            (7, -24),
            (7, -25),
            (usize::MAX >> 1, i64::MAX),
            (3, i64::MIN),
        ] {
            let ev = TraceLowLevelEvent::Step(StepRecord {
                path_id: PathId(p),
                line: Line(l),
            });
            let mut ours = Vec::new();
            RecordEncoder::new()
                .cbor(&mut ours, &Rec::from_event(ev.clone()))
                .unwrap();
            assert_eq!(
                ours,
                cbor4ii::serde::to_vec(Vec::new(), &ev).unwrap(),
                "{p} {l}"
            );
        }
    }

    #[test]
    fn json_events_file_reads_back_with_the_formats_reader() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = EventSink::create(dir.path(), TraceFormat::Json, "p.py", &[]).unwrap();
        for i in 0..(super::BATCH_EVENTS * 2 + 5) {
            sink.push(TraceLowLevelEvent::Step(StepRecord {
                path_id: PathId(0),
                line: Line(i as i64),
            }));
        }
        assert_eq!(sink.finish().unwrap(), (super::BATCH_EVENTS * 2 + 5) as u64);
        let events =
            runtime_tracing::create_trace_reader(runtime_tracing::TraceEventsFileFormat::Json)
                .load_trace_events(&dir.path().join("trace.json"))
                .unwrap();
        assert_eq!(events.len(), super::BATCH_EVENTS * 2 + 5);
        assert!(
            matches!(events.last(), Some(TraceLowLevelEvent::Step(s)) if s.line.0 == (super::BATCH_EVENTS * 2 + 4) as i64)
        );
    }

    /// Pushes `n` steps into a sink capped at `limit` bytes; returns the sink's count.
    fn capped_run(dir: &Path, format: TraceFormat, limit: u64, n: usize) -> (u64, Arc<SizeCap>) {
        let mut sink = EventSink::create(dir, format, "p.py", &[]).unwrap();
        sink.set_max_bytes(Some(limit));
        let cap = sink.size_cap().clone();
        for i in 0..n {
            sink.push(TraceLowLevelEvent::Step(StepRecord {
                path_id: PathId(0),
                line: Line(i as i64),
            }));
        }
        (sink.finish().unwrap(), cap)
    }

    #[test]
    fn a_capped_events_file_stops_after_the_batch_that_reaches_the_cap() {
        for format in TraceFormat::ALL {
            let dir = tempfile::tempdir().unwrap();
            // Compact steps in one path are two bytes that compress to almost nothing.
            let limit = match format {
                TraceFormat::Compact => 500,
                _ => 100_000,
            };
            let (events, cap) = capped_run(dir.path(), format, limit, BATCH_EVENTS * 40);
            let cut = cap.cut().expect("the cap was reached");
            assert_eq!(cut.events, events, "{format:?}");
            assert!(
                events < (BATCH_EVENTS * 40) as u64,
                "{format:?}: nothing was cut"
            );
            let path = dir.path().join(format.events_file_name());
            let size = std::fs::metadata(&path).unwrap().len();
            assert_eq!(cut.bytes, size, "{format:?}");
            assert!(
                size >= limit,
                "{format:?}: {size} bytes, closed before the cap"
            );
            // Whole and readable: the format's reader (ours for the compact format) loads
            // every event written, and says the file is closed.
            let mut ours = crate::writer::reader::EventReader::open(&path).unwrap();
            let mut read = 0u64;
            while ours.next_record().unwrap().is_some() {
                read += 1;
            }
            assert_eq!(read, events, "{format:?}");
            assert_eq!(ours.end(), Some(&crate::writer::reader::End::Complete));
            let theirs = match format {
                TraceFormat::Json => Some(runtime_tracing::TraceEventsFileFormat::Json),
                TraceFormat::Binary => Some(runtime_tracing::TraceEventsFileFormat::Binary),
                TraceFormat::Compact => None,
            };
            if let Some(reader) = theirs {
                let read = runtime_tracing::create_trace_reader(reader)
                    .load_trace_events(&path)
                    .unwrap();
                assert_eq!(read.len() as u64, events, "{format:?}");
            }
            // Past the cap by less than one batch plus the closing bytes: the file without
            // its last batch is below it (each batch here is BATCH_EVENTS steps of about the
            // same size). The zstd formats close with a seek table of 8 bytes per frame, and
            // a frame may end at every batch.
            let batches = events as f64 / BATCH_EVENTS as f64;
            let per_batch = size as f64 / batches;
            let closing = match format {
                TraceFormat::Json => 64.0,
                _ => 64.0 + 8.0 * batches.ceil(),
            };
            assert!(
                (size as f64) < limit as f64 + per_batch + closing,
                "{format:?}: {size} bytes for a cap of {limit}, {per_batch} per batch"
            );
        }
    }

    #[test]
    fn an_uncapped_or_unreached_cap_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (events, cap) = capped_run(dir.path(), TraceFormat::Json, 1 << 40, 10_000);
        assert_eq!(events, 10_000);
        assert_eq!(cap.cut(), None);
        assert_eq!(cap.limit(), Some(1 << 40));
    }

    #[test]
    fn unwritable_directory_fails_at_create() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, b"x").unwrap();
        assert!(EventSink::create(&file.join("sub"), TraceFormat::Json, "p.py", &[]).is_err());
    }
}
