//! The writer thread and the on-disk formats.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};
use runtime_tracing::{create_trace_writer, TraceEventsFileFormat, TraceLowLevelEvent};

use super::{BATCH_EVENTS, BATCH_POOL, MAX_BATCHES_IN_FLIGHT};

/// Which events file to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceFormat {
    /// `trace.json`: a JSON array of events (streamed, readable by `runtime_tracing`).
    Json,
    /// `trace.bin`: CBOR records in a zstd stream (`runtime_tracing` binary v1).
    Binary,
}

impl TraceFormat {
    pub fn events_file_name(self) -> &'static str {
        match self {
            TraceFormat::Json => "trace.json",
            TraceFormat::Binary => "trace.bin",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TraceFormat::Json => "json",
            TraceFormat::Binary => "binary",
        }
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

enum Message {
    Batch(Vec<TraceLowLevelEvent>),
    Finish,
}

/// Owns the writer thread. Dropping it without [`EventSink::finish`] still closes the file.
pub struct EventSink {
    tx: Option<Sender<Message>>,
    /// Emptied batch buffers coming back from the writer thread: in steady state the
    /// recording thread reuses them and allocates nothing per event.
    recycled: Receiver<Vec<TraceLowLevelEvent>>,
    /// Batch buffers created so far; at most [`BATCH_POOL`], then buffers are reused.
    buffers: usize,
    handle: Option<JoinHandle<Result<u64, String>>>,
    batch: Vec<TraceLowLevelEvent>,
    events_path: PathBuf,
}

impl EventSink {
    /// Opens `dir/<events file>` and starts the writer thread. Fails before anything is
    /// recorded if the file cannot be created.
    pub fn create(
        dir: &Path,
        format: TraceFormat,
        program: &str,
        args: &[String],
    ) -> Result<Self, WriterError> {
        let events_path = dir.join(format.events_file_name());
        let (tx, rx) = bounded::<Message>(MAX_BATCHES_IN_FLIGHT);
        let (give_back, recycled) = bounded::<Vec<TraceLowLevelEvent>>(BATCH_POOL);
        // The output is opened on the writer thread (the binary writer is not `Send`); the
        // open result comes back first so a bad path fails before anything is recorded.
        let (ready_tx, ready_rx) = bounded::<Result<(), String>>(1);
        let (path, program, args) = (events_path.clone(), program.to_owned(), args.to_vec());
        let handle = std::thread::Builder::new()
            .name("ct-trace-writer".into())
            .spawn(move || {
                let mut output = match Output::open(&path, format, &program, &args) {
                    Ok(output) => {
                        let _ = ready_tx.send(Ok(()));
                        output
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return Err(e.to_string());
                    }
                };
                let mut written = 0u64;
                for msg in rx.iter() {
                    match msg {
                        Message::Batch(mut events) => {
                            written += events.len() as u64;
                            output.write_batch(&mut events).map_err(|e| e.to_string())?;
                            tracing::debug!(
                                events = events.len(),
                                total_events = written,
                                bytes_on_disk = file_len(&path),
                                "trace writer: batch written"
                            );
                            events.clear();
                            let _ = give_back.try_send(events);
                        }
                        Message::Finish => break,
                    }
                }
                output.finish().map_err(|e| e.to_string())?;
                tracing::info!(
                    events = written,
                    bytes = file_len(&path),
                    path = %path.display(),
                    "trace writer: events file closed"
                );
                Ok(written)
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
            batch: Vec::with_capacity(BATCH_EVENTS),
            events_path,
        })
    }

    pub fn events_path(&self) -> &Path {
        &self.events_path
    }

    #[inline]
    pub fn push(&mut self, event: TraceLowLevelEvent) {
        self.batch.push(event);
        if self.batch.len() >= BATCH_EVENTS {
            self.ship();
        }
    }

    fn ship(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        // A recycled buffer if one is back; a new one while the pool is not full; else wait
        // for the writer to hand one back (back-pressure, as the bounded queue gives).
        let fresh = match self.recycled.try_recv() {
            Ok(v) => v,
            Err(_) if self.buffers < BATCH_POOL => {
                self.buffers += 1;
                Vec::with_capacity(BATCH_EVENTS)
            }
            Err(_) => self
                .recycled
                .recv()
                .unwrap_or_else(|_| Vec::with_capacity(BATCH_EVENTS)),
        };
        let full = std::mem::replace(&mut self.batch, fresh);
        if let Some(tx) = &self.tx {
            // A send only fails when the writer thread died; its error surfaces at finish().
            let _ = tx.send(Message::Batch(full));
        }
    }

    /// Hands over what is buffered without closing the file (used before the process may
    /// be killed, e.g. on a fatal signal, so at most one batch is lost).
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

/// The events file's size so far (what the writer has handed to the OS).
fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

enum Output {
    Json { out: BufWriter<File>, first: bool },
    Binary(Box<dyn runtime_tracing::TraceWriter>),
}

impl Output {
    fn open(
        path: &Path,
        format: TraceFormat,
        program: &str,
        args: &[String],
    ) -> std::io::Result<Self> {
        match format {
            TraceFormat::Json => {
                let mut out = BufWriter::with_capacity(1 << 16, File::create(path)?);
                out.write_all(b"[")?;
                Ok(Output::Json { out, first: true })
            }
            TraceFormat::Binary => {
                let mut w = create_trace_writer(program, args, TraceEventsFileFormat::Binary);
                w.begin_writing_trace_events(path)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                Ok(Output::Binary(w))
            }
        }
    }

    fn write_batch(&mut self, events: &mut Vec<TraceLowLevelEvent>) -> std::io::Result<()> {
        match self {
            Output::Json { out, first } => {
                for event in events.iter() {
                    if !*first {
                        out.write_all(b",\n")?;
                    }
                    *first = false;
                    write_json_event(out, event)?;
                }
                Ok(())
            }
            Output::Binary(w) => {
                for event in events.drain(..) {
                    runtime_tracing::TraceWriter::add_event(w.as_mut(), event);
                }
                Ok(())
            }
        }
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            Output::Json { mut out, .. } => {
                out.write_all(b"]\n")?;
                out.flush()?;
                out.into_inner().map_err(|e| e.into_error())?.sync_data()
            }
            Output::Binary(mut w) => w
                .finish_writing_trace_events()
                .map_err(|e| std::io::Error::other(e.to_string())),
        }
    }
}

/// One event as JSON, exactly as `serde_json` writes it. Steps are half of all events, so
/// they take a hand-written path (integers only, no string escaping); everything else goes
/// through serde.
fn write_json_event(out: &mut impl Write, event: &TraceLowLevelEvent) -> std::io::Result<()> {
    match event {
        TraceLowLevelEvent::Step(step) => {
            let mut buf = itoa::Buffer::new();
            out.write_all(b"{\"Step\":{\"path_id\":")?;
            out.write_all(buf.format(step.path_id.0).as_bytes())?;
            out.write_all(b",\"line\":")?;
            out.write_all(buf.format(step.line.0).as_bytes())?;
            out.write_all(b"}}")
        }
        other => serde_json::to_writer(out, other).map_err(std::io::Error::from),
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
            write_json_event(&mut ours, &ev).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&ev).unwrap()
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
        let events = runtime_tracing::create_trace_reader(TraceEventsFileFormat::Json)
            .load_trace_events(&dir.path().join("trace.json"))
            .unwrap();
        assert_eq!(events.len(), super::BATCH_EVENTS * 2 + 5);
        assert!(
            matches!(events.last(), Some(TraceLowLevelEvent::Step(s)) if s.line.0 == (super::BATCH_EVENTS * 2 + 4) as i64)
        );
    }

    #[test]
    fn unwritable_directory_fails_at_create() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, b"x").unwrap();
        assert!(EventSink::create(&file.join("sub"), TraceFormat::Json, "p.py", &[]).is_err());
    }
}
