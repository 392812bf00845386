//! The CodeTracer trace format's own writer crate (`codetracer_trace_writer` 0.17) beside
//! the recorder's writer, on the event stream of the call-heavy workload
//! (`bench/workloads/call_heavy.py`: `fib(n)` with an `add(a, b)` call per step, every call
//! with its arguments, every return with its value, every line).
//!
//! The stream is produced the way the recorder produces it (interned ids, one argument
//! list per call, `Int` values), without Python, so what is measured is the writer alone.
//! For each writer: wall and CPU time (all threads) to write and close the events file,
//! events, bytes per event; with `--callgrind`, the instructions of every thread
//! (valgrind's callgrind on this same binary, one writer per run), minus the run that
//! only generates the stream (`none`).
//!
//! `make bench-formats`, or:
//! `cargo bench --features format-crates-bench --bench format_writers -- [--fib N] [--callgrind] [--writer W]`
//!
//! Writers: `none`, `ours-binary`, `ours-json` (the recorder's `EventSink`: hot path into
//! recycled batches, encoding on its writer thread), `ctw-binary` (the crate's streaming
//! CBOR + zstd writer, `TraceEventsFileFormat::Binary`), `ctw-json` (the crate's JSON
//! writer, which keeps every event in memory until the end).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use codetracer_trace_types as ctt;
// Both of the crate's traits have these methods: calls name the public one.
use codetracer_trace_writer::trace_writer::TraceWriter as TW;
use ct_recorder::writer::{EventSink, TraceBuilder, TraceFormat};
use runtime_tracing as rt;

const PROGRAM: &str = "/app/call_heavy.py";
// The lines of bench/workloads/call_heavy.py.
const ADD_DEF: i64 = 5;
const ADD_RETURN: i64 = 6;
const FIB_DEF: i64 = 9;
const FIB_IF: i64 = 10;
const FIB_RETURN_N: i64 = 11;
const FIB_RETURN_ADD: i64 = 12;

/// What the recorder asks of a writer on this workload.
trait Writer {
    fn call_fib(&mut self, n: i64);
    fn call_add(&mut self, a: i64, b: i64);
    fn step(&mut self, line: i64);
    fn ret(&mut self, value: i64);
    /// Closes the events file; returns the events written.
    fn finish(self: Box<Self>) -> u64;
}

fn fib(w: &mut dyn Writer, n: i64) -> i64 {
    w.call_fib(n);
    w.step(FIB_IF);
    if n < 2 {
        w.step(FIB_RETURN_N);
        w.ret(n);
        return n;
    }
    w.step(FIB_RETURN_ADD);
    let a = fib(w, n - 1);
    let b = fib(w, n - 2);
    w.call_add(a, b);
    w.step(ADD_RETURN);
    w.ret(a + b);
    w.ret(a + b);
    a + b
}

/// Generates the stream and drops it: the cost of the benchmark itself.
struct Nothing(u64);

impl Writer for Nothing {
    fn call_fib(&mut self, n: i64) {
        std::hint::black_box(n);
        self.0 += 3;
    }
    fn call_add(&mut self, a: i64, b: i64) {
        std::hint::black_box((a, b));
        self.0 += 4;
    }
    fn step(&mut self, line: i64) {
        std::hint::black_box(line);
        self.0 += 1;
    }
    fn ret(&mut self, value: i64) {
        std::hint::black_box(value);
        self.0 += 1;
    }
    fn finish(self: Box<Self>) -> u64 {
        self.0
    }
}

struct Ours {
    b: TraceBuilder,
    path: rt::PathId,
    fib: rt::FunctionId,
    add: rt::FunctionId,
    int: rt::TypeId,
    n: rt::VariableId,
    a: rt::VariableId,
    bv: rt::VariableId,
}

impl Ours {
    fn new(dir: &Path, format: TraceFormat) -> Self {
        let sink = EventSink::create(dir, format, PROGRAM, &[]).expect("events file");
        let mut b = TraceBuilder::new(sink, Path::new(PROGRAM));
        let path = b.path_id(Path::new(PROGRAM));
        let fib = b.function_id("fib", Path::new(PROGRAM), FIB_DEF);
        let add = b.function_id("add", Path::new(PROGRAM), ADD_DEF);
        let int = b.type_id(rt::TypeKind::Int, "int");
        let n = b.variable_id("n");
        let a = b.variable_id("a");
        let bv = b.variable_id("b");
        Ours {
            b,
            path,
            fib,
            add,
            int,
            n,
            a,
            bv,
        }
    }

    fn int(&self, i: i64) -> rt::ValueRecord {
        rt::ValueRecord::Int {
            i,
            type_id: self.int,
        }
    }
}

impl Writer for Ours {
    fn call_fib(&mut self, n: i64) {
        let args = vec![rt::FullValueRecord {
            variable_id: self.n,
            value: self.int(n),
        }];
        self.b.call(self.fib, args);
    }
    fn call_add(&mut self, a: i64, b: i64) {
        let args = vec![
            rt::FullValueRecord {
                variable_id: self.a,
                value: self.int(a),
            },
            rt::FullValueRecord {
                variable_id: self.bv,
                value: self.int(b),
            },
        ];
        self.b.call(self.add, args);
    }
    fn step(&mut self, line: i64) {
        self.b.step(self.path, line);
    }
    fn ret(&mut self, value: i64) {
        let v = self.int(value);
        self.b.ret(v);
    }
    fn finish(mut self: Box<Self>) -> u64 {
        self.b.finish().expect("events file closed")
    }
}

/// The format crate's writer, used the way its documentation and the upstream recorder
/// use it: `register_step` with the path, `register_call` with `arg(name, value)`s.
struct Crate {
    w: Box<dyn codetracer_trace_writer::trace_writer::TraceWriter + Send>,
    program: PathBuf,
    fib: ctt::FunctionId,
    add: ctt::FunctionId,
    int: ctt::TypeId,
    events: u64,
}

impl Crate {
    fn new(dir: &Path, format: codetracer_trace_writer::TraceEventsFileFormat) -> Self {
        let mut w = codetracer_trace_writer::create_trace_writer(PROGRAM, &[], format);
        let file = match format {
            codetracer_trace_writer::TraceEventsFileFormat::Json => "trace.json",
            _ => "trace.bin",
        };
        TW::begin_writing_trace_events(&mut *w, &dir.join(file)).expect("events file");
        let program = PathBuf::from(PROGRAM);
        TW::start(&mut *w, &program, ctt::Line(1));
        let fib = TW::ensure_function_id(&mut *w, "fib", &program, ctt::Line(FIB_DEF));
        let add = TW::ensure_function_id(&mut *w, "add", &program, ctt::Line(ADD_DEF));
        let int = TW::ensure_type_id(&mut *w, ctt::TypeKind::Int, "int");
        // start: Function, Path, Call, Type; then two Functions and a Type.
        Crate {
            w,
            program,
            fib,
            add,
            int,
            events: 7,
        }
    }

    fn int(&self, i: i64) -> ctt::ValueRecord {
        ctt::ValueRecord::Int {
            i,
            type_id: self.int,
        }
    }
}

impl Writer for Crate {
    fn call_fib(&mut self, n: i64) {
        let v = self.int(n);
        let args = vec![TW::arg(&mut *self.w, "n", v)];
        TW::register_call(&mut *self.w, self.fib, args);
        self.events += 3;
    }
    fn call_add(&mut self, a: i64, b: i64) {
        let (va, vb) = (self.int(a), self.int(b));
        let args = vec![
            TW::arg(&mut *self.w, "a", va),
            TW::arg(&mut *self.w, "b", vb),
        ];
        TW::register_call(&mut *self.w, self.add, args);
        self.events += 4;
    }
    fn step(&mut self, line: i64) {
        TW::register_step(&mut *self.w, &self.program, ctt::Line(line));
        self.events += 1;
    }
    fn ret(&mut self, value: i64) {
        let v = self.int(value);
        TW::register_return(&mut *self.w, v);
        self.events += 1;
    }
    fn finish(mut self: Box<Self>) -> u64 {
        TW::finish_writing_trace_events(&mut *self.w).expect("events file closed");
        // Three VariableName records, announced on first use.
        self.events + 3
    }
}

const WRITERS: [&str; 5] = ["none", "ours-binary", "ours-json", "ctw-binary", "ctw-json"];

fn make(name: &str, dir: &Path) -> Box<dyn Writer> {
    use codetracer_trace_writer::TraceEventsFileFormat as F;
    match name {
        "none" => Box::new(Nothing(0)),
        "ours-binary" => Box::new(Ours::new(dir, TraceFormat::Binary)),
        "ours-json" => Box::new(Ours::new(dir, TraceFormat::Json)),
        "ctw-binary" => Box::new(Crate::new(dir, F::Binary)),
        "ctw-json" => Box::new(Crate::new(dir, F::Json)),
        other => {
            eprintln!("unknown writer {other:?}; one of {WRITERS:?}");
            std::process::exit(2)
        }
    }
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

struct Outcome {
    events: u64,
    bytes: u64,
    wall: f64,
    cpu: f64,
}

fn run_one(name: &str, n: i64) -> Outcome {
    let dir = tempfile::tempdir().expect("temp dir");
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let mut w = make(name, dir.path());
    fib(w.as_mut(), n);
    let events = w.finish();
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let bytes = std::fs::read_dir(dir.path())
        .expect("temp dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    Outcome {
        events,
        bytes,
        wall,
        cpu,
    }
}

/// Instructions of every thread of this binary running one writer, from callgrind.
fn callgrind(name: &str, n: i64) -> u64 {
    let exe = std::env::current_exe().expect("own path");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("cg.out");
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(&exe)
        .args(["--writer", name, "--fib", &n.to_string(), "--quiet"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("valgrind (apt-get install valgrind)");
    assert!(status.success(), "callgrind run of {name} failed");
    let text = std::fs::read_to_string(&out).expect("callgrind output");
    text.lines()
        .find_map(|l| l.strip_prefix("summary: ").or(l.strip_prefix("totals: ")))
        .and_then(|v| v.trim().parse().ok())
        .expect("callgrind summary line")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut n = 25i64;
    let mut cg_n = 18i64;
    let mut only: Option<String> = None;
    let mut with_callgrind = false;
    let mut quiet = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--fib" => n = args.next().and_then(|v| v.parse().ok()).unwrap_or(n),
            "--callgrind-fib" => cg_n = args.next().and_then(|v| v.parse().ok()).unwrap_or(cg_n),
            "--writer" => only = args.next(),
            "--callgrind" => with_callgrind = true,
            "--quiet" => quiet = true,
            "--bench" => {} // cargo bench passes it
            other => {
                eprintln!("unknown argument {other:?}");
                std::process::exit(2)
            }
        }
    }
    if let Some(name) = only.as_deref() {
        let o = run_one(name, n);
        if !quiet {
            println!(
                "{name}: {} events, {} bytes, {:.3} s wall, {:.3} s cpu",
                o.events, o.bytes, o.wall, o.cpu
            );
        }
        return;
    }
    println!("call-heavy event stream, fib({n}); median of 3 runs each, interleaved");
    let mut results: Vec<Vec<Outcome>> = WRITERS.iter().map(|_| Vec::new()).collect();
    for _ in 0..3 {
        for (i, w) in WRITERS.iter().enumerate() {
            results[i].push(run_one(w, n));
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    println!(
        "{:<12} {:>12} {:>12} {:>9} {:>9} {:>9} {:>10}",
        "writer", "events", "bytes", "bytes/ev", "wall s", "cpu s", "ns/ev cpu"
    );
    for (i, w) in WRITERS.iter().enumerate() {
        let r = &results[i];
        let wall = median(&mut r.iter().map(|o| o.wall).collect());
        let cpu = median(&mut r.iter().map(|o| o.cpu).collect());
        let events = r[0].events;
        println!(
            "{:<12} {:>12} {:>12} {:>9.2} {:>9.3} {:>9.3} {:>10.1}",
            w,
            events,
            r[0].bytes,
            r[0].bytes as f64 / events as f64,
            wall,
            cpu,
            cpu * 1e9 / events as f64
        );
    }
    if with_callgrind {
        println!("instructions (callgrind, all threads), fib({cg_n})");
        let base = callgrind("none", cg_n);
        let events = run_one("ours-binary", cg_n).events;
        println!(
            "{:<12} {:>14} {:>14} {:>10}",
            "writer", "instructions", "beyond none", "per event"
        );
        for w in WRITERS {
            let ir = if w == "none" {
                base
            } else {
                callgrind(w, cg_n)
            };
            let extra = ir.saturating_sub(base);
            println!(
                "{:<12} {:>14} {:>14} {:>10.0}",
                w,
                ir,
                extra,
                extra as f64 / events as f64
            );
        }
    }
}
