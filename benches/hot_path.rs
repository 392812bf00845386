//! The cost of a cached line event on the Rust side of the hot path (`TraceBuilder::step`:
//! build the event, push it into the batch, hand full batches to the writer thread), and
//! the heap allocations per event (target: zero), printed before the timings.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, Criterion};
use ct_recorder::writer::{EventSink, TraceBuilder, TraceFormat, BATCH_EVENTS, BATCH_POOL};

struct Counting;
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn step_events(c: &mut Criterion) {
    for format in [TraceFormat::Json, TraceFormat::Binary] {
        let dir = tempfile::tempdir().unwrap();
        let sink = EventSink::create(dir.path(), format, "/app/p.py", &[]).unwrap();
        let mut b = TraceBuilder::new(sink, Path::new("/app/p.py"));
        let path = b.path_id(Path::new("/app/p.py"));
        for i in 0..BATCH_EVENTS * BATCH_POOL * 4 {
            b.step(path, i as i64);
        }
        // Allocations by every thread (the writer's serialisation included) per event.
        let n = BATCH_EVENTS * BATCH_POOL * 8;
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for i in 0..n {
            b.step(path, (i % 1000) as i64);
        }
        let all = ALLOCATIONS.load(Ordering::Relaxed) - before;
        println!("{format:?}: {:.6} heap allocations per cached step event, all threads ({all} over {n})", all as f64 / n as f64);
        c.bench_function(&format!("step event ({})", format.as_str()), |bench| {
            let mut line = 0i64;
            bench.iter(|| {
                line = (line + 1) % 1000;
                b.step(path, line);
            })
        });
        b.finish().unwrap();
    }
}

criterion_group!(benches, step_events);
criterion_main!(benches);
