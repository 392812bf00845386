//! Trace output in the CodeTracer trace format (`runtime_tracing`).
//!
//! The recorder thread only *builds* events: [`TraceBuilder`] interns paths, functions,
//! types and variable names (so every `Path`/`Function`/`Type`/`VariableName` record comes
//! before its first use, as the format requires) and appends fixed-size records
//! ([`record::Rec`], 24 bytes, no heap memory for scalar values) to a recycled batch. Full
//! batches go over a bounded channel to a writer thread that turns the records into the
//! format's events and encodes them, so the traced program never waits on encoding or the
//! disk, and memory stays bounded however long the run is: at most
//! [`MAX_BATCHES_IN_FLIGHT`] batches exist at once.
//!
//! Formats:
//! - `json`: `trace.json`, one JSON array of events, streamed element by element. It is
//!   byte-for-byte what `runtime_tracing`'s own JSON reader expects.
//! - `binary`: `trace.bin`, the crate's own streaming CBOR+zstd writer.
//!
//! `trace_metadata.json` and `trace_paths.json` are written at the end, atomically.

mod builder;
pub mod compact;
pub mod convert;
pub mod py;
mod py_events;
pub mod reader;
pub mod record;
mod sink;
mod slab;

pub use builder::{TraceBuilder, ValueTo, HOT_BOOL, HOT_FLOAT, HOT_INT};
pub use sink::{
    write_atomically, EventSink, SizeCap, TraceCut, TraceFormat, WriterError, BINARY_HEADER_V1,
};

/// Events per batch handed to the writer thread.
pub const BATCH_EVENTS: usize = 4096;
/// Bound on batches queued for the writer thread; the recorder blocks (rarely) beyond it.
pub const MAX_BATCHES_IN_FLIGHT: usize = 16;
/// Batch buffers that ever exist: the one being filled, the queued ones, the one being
/// written. Past that, buffers are recycled, so recording allocates nothing per event.
pub const BATCH_POOL: usize = MAX_BATCHES_IN_FLIGHT + 2;
/// The longest an event waits before the writer thread hands it to the OS (a killed
/// process loses at most this much), however few events the program makes.
pub const FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);
