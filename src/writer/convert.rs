//! Converting a trace from one events format to another (`python -m ct_recorder.convert`):
//! above all the compact `trace.ctc` into CodeTracer binary (`trace.bin`) or JSON
//! (`trace.json`), which CodeTracer's own tools read.
//!
//! The conversion streams: one record at a time from the source's reader into the same
//! writer the recorder uses, so memory stays flat and the output is what recording in that
//! format would have written, event for event. A source whose run did not finish (killed,
//! crashed) converts up to its last whole event, and the output is left without its closing
//! record, so that it too reads as the trace of an unfinished run.

use std::path::{Path, PathBuf};

use super::reader::{End, EventReader};
use super::sink::{write_atomically, Output};
use super::TraceFormat;

/// The trace files that sit beside the events file and go with it.
pub const SIDE_FILES: [&str; 2] = ["trace_metadata.json", "trace_paths.json"];

/// What a conversion did.
#[derive(Debug)]
pub struct Converted {
    /// The events file written.
    pub events_file: PathBuf,
    pub events: u64,
    /// `None` when the source was a finished trace; else why it is not.
    pub truncated: Option<String>,
    /// The side files copied into the output directory, and those the source lacks.
    pub copied: Vec<&'static str>,
    pub missing: Vec<&'static str>,
}

/// Records converted per write (one batch, as the writer thread writes them).
const CHUNK: usize = super::BATCH_EVENTS;

/// Converts the trace at `source` (a trace directory, or an events file) into `out_dir`
/// (created if missing) in `to`, with its metadata and paths files. Refuses to write over
/// any trace file already in `out_dir`, so nothing is lost: the events file is written
/// under a temporary name and renamed when whole.
/// A conversion that fails leaves `out_dir` as it found it: the files it wrote are removed,
/// and so is the directory when this call created it.
pub fn convert(source: &Path, out_dir: &Path, to: TraceFormat) -> Result<Converted, String> {
    let mut reader = EventReader::open(source).map_err(|e| e.0)?;
    let created = !out_dir.exists();
    let mut written = Vec::new();
    let result = convert_into(&mut reader, out_dir, to, &mut written);
    if result.is_err() {
        for path in &written {
            let _ = std::fs::remove_file(path);
        }
        if created {
            // Only if empty: nothing but this call's files was ever meant to be in it.
            let _ = std::fs::remove_dir(out_dir);
        }
    }
    result
}

fn convert_into(
    reader: &mut EventReader,
    out_dir: &Path,
    to: TraceFormat,
    written: &mut Vec<PathBuf>,
) -> Result<Converted, String> {
    let source_dir = match reader.path().parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let same_dir = match (source_dir.canonicalize(), out_dir.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same_dir {
        return Err(format!(
            "{}: the output directory is the source's; give another one",
            out_dir.display()
        ));
    }
    let taken: Vec<String> = TraceFormat::ALL
        .iter()
        .map(|f| f.events_file_name())
        .chain(SIDE_FILES)
        .filter(|name| out_dir.join(name).exists())
        .map(str::to_owned)
        .collect();
    if !taken.is_empty() {
        return Err(format!(
            "{}: already holds {}; give an empty or new directory",
            out_dir.display(),
            taken.join(", ")
        ));
    }

    let events_file = out_dir.join(to.events_file_name());
    let tmp = out_dir.join(format!(
        ".{}.tmp.{}",
        to.events_file_name(),
        std::process::id()
    ));
    written.push(tmp.clone());
    let events = write_events(reader, &tmp, to)?;
    std::fs::rename(&tmp, &events_file).map_err(|e| format!("{}: {e}", events_file.display()))?;
    written.push(events_file.clone());

    let mut copied = Vec::new();
    let mut missing = Vec::new();
    let from = (reader.format(), reader.path().to_path_buf());
    for name in SIDE_FILES {
        match std::fs::read(source_dir.join(name)) {
            Ok(mut bytes) => {
                if name == METADATA {
                    bytes = converted_metadata(bytes, &from, to, &events_file, out_dir);
                }
                write_atomically(&out_dir.join(name), &bytes)
                    .map_err(|e| format!("{}: {e}", out_dir.join(name).display()))?;
                written.push(out_dir.join(name));
                copied.push(name);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing.push(name),
            Err(e) => return Err(format!("{}: {e}", source_dir.join(name).display())),
        }
    }
    let truncated = match reader.end() {
        Some(End::Truncated(why)) => Some(why.clone()),
        _ => None,
    };
    Ok(Converted {
        events_file,
        events,
        truncated,
        copied,
        missing,
    })
}

const METADATA: &str = "trace_metadata.json";

/// The source's metadata, saying where the events now are and what they were converted
/// from (`format`, `summary.events_file`, `summary.trace_dir`, `converted_from`). Bytes
/// that are not a JSON object are copied as they are.
fn converted_metadata(
    bytes: Vec<u8>,
    from: &(TraceFormat, PathBuf),
    to: TraceFormat,
    events_file: &Path,
    out_dir: &Path,
) -> Vec<u8> {
    let Ok(serde_json::Value::Object(mut meta)) = serde_json::from_slice(&bytes) else {
        return bytes;
    };
    let abs = |p: &Path| {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .to_string_lossy()
            .into_owned()
    };
    meta.insert("format".into(), to.as_str().into());
    if let Some(serde_json::Value::Object(summary)) = meta.get_mut("summary") {
        summary.insert("events_file".into(), abs(events_file).into());
        summary.insert("trace_dir".into(), abs(out_dir).into());
    }
    meta.insert(
        "converted_from".into(),
        serde_json::json!({"format": from.0.as_str(), "events_file": abs(&from.1)}),
    );
    let mut out = serde_json::to_vec_pretty(&meta).unwrap_or(bytes);
    out.push(b'\n');
    out
}

fn write_events(reader: &mut EventReader, path: &Path, to: TraceFormat) -> Result<u64, String> {
    let io = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut out = Output::open(path, to).map_err(io)?;
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut events = 0u64;
    loop {
        chunk.clear();
        while chunk.len() < CHUNK {
            match reader.next_rec().map_err(|e| e.0)? {
                Some(rec) => chunk.push(rec),
                None => break,
            }
        }
        if chunk.is_empty() {
            break;
        }
        out.write_events(&chunk).map_err(io)?;
        events += chunk.len() as u64;
    }
    match reader.end() {
        Some(End::Complete) => out.finish().map_err(io)?,
        _ => out.close_unfinished().map_err(io)?,
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::EventSink;
    use runtime_tracing::{
        CallRecord, FullValueRecord, FunctionId, FunctionRecord, Line, PathId, ReturnRecord,
        StepRecord, TraceLowLevelEvent, TypeId, ValueRecord, VariableId,
    };

    fn sample(n: usize) -> Vec<TraceLowLevelEvent> {
        let mut v = vec![
            TraceLowLevelEvent::Path("/app/m.py".into()),
            TraceLowLevelEvent::Function(FunctionRecord {
                name: "add".into(),
                path_id: PathId(0),
                line: Line(1),
            }),
            TraceLowLevelEvent::VariableName("a".into()),
            TraceLowLevelEvent::VariableName("b".into()),
        ];
        for i in 0..n as i64 {
            let args: Vec<FullValueRecord> = [
                (
                    0,
                    ValueRecord::Int {
                        i,
                        type_id: TypeId(1),
                    },
                ),
                (
                    1,
                    ValueRecord::String {
                        text: format!("x{i}"),
                        type_id: TypeId(2),
                    },
                ),
            ]
            .into_iter()
            .map(|(var, value)| FullValueRecord {
                variable_id: VariableId(var),
                value,
            })
            .collect();
            for a in &args {
                v.push(TraceLowLevelEvent::Value(a.clone()));
            }
            v.push(TraceLowLevelEvent::Call(CallRecord {
                function_id: FunctionId(0),
                args,
            }));
            for line in [2, 3, 2] {
                v.push(TraceLowLevelEvent::Step(StepRecord {
                    path_id: PathId(0),
                    line: Line(line + i % 3),
                }));
            }
            v.push(TraceLowLevelEvent::Return(ReturnRecord {
                return_value: ValueRecord::Float {
                    // Exact in binary: the format's JSON reader parses other floats to
                    // a neighbouring value.
                    f: i as f64 / 4.0,
                    type_id: TypeId(3),
                },
            }));
        }
        v
    }

    /// Records `events` the way the recorder does: compact arguments and calls, so the
    /// compact file holds `Arg`/`Call` records and not boxed events.
    fn record(dir: &Path, format: TraceFormat, events: &[TraceLowLevelEvent]) {
        use crate::writer::record::{Rec, Val};
        let mut sink = EventSink::create(dir, format, "m.py", &[]).unwrap();
        for e in events {
            match e {
                TraceLowLevelEvent::Value(v) => sink.push_rec(Rec::Arg {
                    variable: v.variable_id.0 as u32,
                    value: Val::from_record(v.value.clone()),
                }),
                TraceLowLevelEvent::Call(c) => sink.push_rec(Rec::Call {
                    function: c.function_id.0 as u32,
                    nargs: c.args.len() as u32,
                }),
                other => sink.push(other.clone()),
            }
        }
        sink.finish().unwrap();
        std::fs::write(dir.join("trace_paths.json"), b"[\"/app/m.py\"]").unwrap();
        std::fs::write(
            dir.join(METADATA),
            format!(
                r#"{{"format": "{}", "summary": {{"events": 7, "events_file": "x"}}}}"#,
                format.as_str()
            ),
        )
        .unwrap();
    }

    fn as_json(events: &[TraceLowLevelEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect()
    }

    /// Compares two event lists, reporting the first difference only.
    fn same_events(got: &[TraceLowLevelEvent], want: &[TraceLowLevelEvent], to: TraceFormat) {
        let (got, want) = (as_json(got), as_json(want));
        if let Some(i) = (0..got.len().min(want.len())).find(|&i| got[i] != want[i]) {
            panic!("{to:?}: event {i}: {} != {}", got[i], want[i]);
        }
        assert_eq!(got.len(), want.len(), "{to:?}");
    }

    #[test]
    fn compact_converts_to_what_the_formats_own_reader_reads_as_the_recorded_events() {
        let events = sample(3_000);
        let src = tempfile::tempdir().unwrap();
        record(src.path(), TraceFormat::Compact, &events);
        // The source's own JSON text (what `trace_reader` hands Python) is serde's, for the
        // compact `Arg`/`Call` records as for the rest.
        let mut r = EventReader::open(src.path()).unwrap();
        let (mut text, mut i) = (Vec::new(), 0);
        while r.next_json(&mut text).unwrap() {
            assert_eq!(
                std::str::from_utf8(&text).unwrap(),
                serde_json::to_string(&events[i]).unwrap()
            );
            text.clear();
            i += 1;
        }
        assert_eq!(i, events.len());
        for (to, theirs) in [
            (
                TraceFormat::Binary,
                runtime_tracing::TraceEventsFileFormat::Binary,
            ),
            (
                TraceFormat::Json,
                runtime_tracing::TraceEventsFileFormat::Json,
            ),
        ] {
            let out = tempfile::tempdir().unwrap();
            let dst = out.path().join("converted");
            let done = convert(src.path(), &dst, to).unwrap();
            assert_eq!(done.events, events.len() as u64, "{to:?}");
            assert_eq!(done.truncated, None);
            assert_eq!(done.copied, SIDE_FILES.to_vec());
            assert_eq!(done.events_file, dst.join(to.events_file_name()));
            let read = runtime_tracing::create_trace_reader(theirs)
                .load_trace_events(&done.events_file)
                .unwrap();
            same_events(&read, &events, to);
            assert_eq!(
                std::fs::read(dst.join("trace_paths.json")).unwrap(),
                std::fs::read(src.path().join("trace_paths.json")).unwrap()
            );
            let meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dst.join(METADATA)).unwrap()).unwrap();
            assert_eq!(meta["format"], to.as_str());
            assert_eq!(meta["converted_from"]["format"], "compact");
            assert_eq!(meta["summary"]["events"], 7);
            assert_eq!(
                meta["summary"]["events_file"],
                std::path::absolute(&done.events_file)
                    .unwrap()
                    .to_str()
                    .unwrap()
            );
            // Recording in that format directly writes the same events: for JSON the same
            // bytes; for binary the same events (where its zstd frames end depends on the
            // writer thread's timing, so the compressed bytes may differ).
            let direct = tempfile::tempdir().unwrap();
            record(direct.path(), to, &events);
            let direct_file = direct.path().join(to.events_file_name());
            match to {
                TraceFormat::Json => {
                    let (a, b) = (
                        std::fs::read(&done.events_file).unwrap(),
                        std::fs::read(&direct_file).unwrap(),
                    );
                    assert!(a == b, "{} and {} bytes differ", a.len(), b.len());
                }
                _ => {
                    let direct_read = runtime_tracing::create_trace_reader(theirs)
                        .load_trace_events(&direct_file)
                        .unwrap();
                    same_events(&direct_read, &read, to);
                }
            }
        }
    }

    #[test]
    fn a_cut_source_converts_its_prefix_into_a_file_that_reads_as_unfinished() {
        // Large enough for several zstd blocks, so that a cut leaves whole ones.
        let events = sample(60_000);
        let src = tempfile::tempdir().unwrap();
        record(src.path(), TraceFormat::Compact, &events);
        let file = src.path().join("trace.ctc");
        let whole = std::fs::read(&file).unwrap();
        std::fs::write(&file, &whole[..whole.len() * 2 / 3]).unwrap();
        for to in [TraceFormat::Binary, TraceFormat::Json] {
            let out = tempfile::tempdir().unwrap();
            let done = convert(src.path(), out.path(), to).unwrap();
            assert!(done.truncated.is_some(), "{to:?}");
            let mut r = EventReader::open(out.path()).unwrap();
            let mut n = 0u64;
            while r.next_event().unwrap().is_some() {
                n += 1;
            }
            assert_eq!(n, done.events, "{to:?}");
            assert!(n > 0 && n < events.len() as u64, "{to:?}: {n}");
            assert!(matches!(r.end(), Some(End::Truncated(_))), "{to:?}");
        }
    }

    #[test]
    fn it_never_writes_over_a_trace_or_into_the_source_directory() {
        let events = sample(10);
        let src = tempfile::tempdir().unwrap();
        record(src.path(), TraceFormat::Compact, &events);
        let err = convert(src.path(), src.path(), TraceFormat::Binary).unwrap_err();
        assert!(err.contains("the source's"), "{err}");
        let out = tempfile::tempdir().unwrap();
        std::fs::write(out.path().join("trace_paths.json"), b"keep").unwrap();
        let err = convert(src.path(), out.path(), TraceFormat::Binary).unwrap_err();
        assert!(err.contains("already holds trace_paths.json"), "{err}");
        assert_eq!(
            std::fs::read(out.path().join("trace_paths.json")).unwrap(),
            b"keep"
        );
        assert!(!out.path().join("trace.bin").exists());
        let err = convert(&src.path().join("nope"), out.path(), TraceFormat::Binary).unwrap_err();
        assert!(!err.is_empty());
    }
}
