//! A real recording in the default format (compact, `trace.ctc`) reads back with the
//! project's reader, and converted to CodeTracer binary (`python -m ct_recorder.convert`'s
//! conversion) with the CodeTracer format's own reader crate (`runtime_tracing`), event for
//! event the same.
//!
//! The recorder runs inside an embedded CPython (the one PyO3 builds for), started the way
//! `ct_recorder.start()` starts it, with no format given; the program is a real file with
//! calls, arguments, return values, a class, an exception and a thread.

use std::ffi::CString;
use std::path::Path;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use runtime_tracing::{TraceEventsFileFormat, TraceLowLevelEvent};

use ct_recorder::session::DEFAULT_FORMAT;
use ct_recorder::writer::reader::{End, EventReader};
use ct_recorder::writer::TraceFormat;

const PROGRAM: &str = r#"
import threading

def greet(name, times=2):
    return [f"hi {name}"] * times

class Box:
    def __init__(self, v):
        self.v = {"v": v, "pair": (v, str(v))}

def worker(n):
    return sum(len(greet(str(i))) for i in range(n))

t = threading.Thread(target=worker, args=(20,))
t.start()
worker(30)
t.join()
Box(3)
try:
    raise ValueError("boom")
except ValueError:
    pass
"#;

/// Records `program` into `trace_dir` with the in-process API's defaults (`format=None`).
fn record(program: &Path, trace_dir: &Path) {
    pyo3::append_to_inittab!(_native);
    pyo3::prepare_freethreaded_python();
    Python::with_gil(|py| {
        let globals = PyDict::new(py);
        globals.set_item("trace_dir", trace_dir).unwrap();
        globals.set_item("program", program).unwrap();
        let code = CString::new(
            "import _native\n\
             _native.start(str(trace_dir), program=str(program))\n\
             with open(program) as f:\n    \
                 source = f.read()\n\
             exec(compile(source, str(program), 'exec'), {'__name__': '__main__'})\n\
             summary = _native.stop()\n",
        )
        .unwrap();
        py.run(&code, Some(&globals), None)
            .unwrap_or_else(|e| panic!("recording failed: {e}"));
        let summary = globals.get_item("summary").unwrap().unwrap();
        let errors: u64 = summary
            .get_item("recorder_error_count")
            .unwrap()
            .extract()
            .unwrap();
        assert_eq!(errors, 0, "{summary}");
    });
}

use ct_recorder::_native;

fn kind(e: &TraceLowLevelEvent) -> String {
    let json = serde_json::to_value(e).unwrap();
    match json {
        serde_json::Value::Object(m) => m.keys().next().unwrap().clone(),
        other => other.as_str().unwrap_or("?").to_owned(),
    }
}

#[test]
fn the_default_format_reads_back_with_the_formats_own_reader() {
    assert_eq!(
        DEFAULT_FORMAT,
        TraceFormat::Compact,
        "docs/recording.md says the default is compact"
    );
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("prog.py");
    std::fs::write(&program, PROGRAM).unwrap();
    let trace_dir = dir.path().join("trace");
    record(&program, &trace_dir);

    // The default format's file, and only it.
    let events_file = trace_dir.join(DEFAULT_FORMAT.events_file_name());
    assert!(events_file.is_file(), "{}", events_file.display());
    for other in TraceFormat::ALL {
        if other != DEFAULT_FORMAT {
            assert!(!trace_dir.join(other.events_file_name()).exists());
        }
    }

    let converted = dir.path().join("converted");
    let done =
        ct_recorder::writer::convert::convert(&trace_dir, &converted, TraceFormat::Binary).unwrap();
    assert_eq!(done.truncated, None);
    let theirs = runtime_tracing::create_trace_reader(TraceEventsFileFormat::Binary)
        .load_trace_events(&done.events_file)
        .unwrap_or_else(|e| {
            panic!(
                "runtime_tracing cannot read {}: {e}",
                done.events_file.display()
            )
        });
    assert_eq!(theirs.len() as u64, done.events);

    let mut reader = EventReader::open(&trace_dir).unwrap();
    assert_eq!(reader.format(), DEFAULT_FORMAT);
    let mut ours = Vec::new();
    while let Some(e) = reader.next_event().unwrap() {
        ours.push(e);
    }
    assert_eq!(reader.end(), Some(&End::Complete));

    let as_json = |v: &[TraceLowLevelEvent]| -> Vec<String> {
        v.iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect()
    };
    assert_eq!(as_json(&theirs), as_json(&ours));

    // What the program did is there: 50 calls of greet over two threads, with their
    // arguments; the exception; the thread.
    let functions: Vec<String> = theirs
        .iter()
        .filter_map(|e| match e {
            TraceLowLevelEvent::Function(f) => Some(f.name.clone()),
            _ => None,
        })
        .collect();
    let greet_calls = theirs
        .iter()
        .filter(|e| {
            matches!(e, TraceLowLevelEvent::Call(c)
                if functions[c.function_id.0] == "greet" && c.args.len() == 2)
        })
        .count();
    assert_eq!(greet_calls, 50);
    let kinds: std::collections::BTreeSet<String> = theirs.iter().map(kind).collect();
    for k in [
        "Path",
        "Function",
        "Call",
        "Return",
        "Step",
        "Value",
        "Type",
        "ThreadStart",
        "Event",
    ] {
        assert!(kinds.contains(k), "no {k} event; kinds: {kinds:?}");
    }
}
