//! The recorder's cached per-event path (a line step of a known code object) must not
//! allocate: it runs for every line of the traced program. Counts heap allocations made by
//! the recording thread only (a thread-local counter in a wrapping global allocator).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use ct_recorder::writer::{EventSink, TraceBuilder, TraceFormat, BATCH_EVENTS, BATCH_POOL};

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

#[test]
fn cached_step_events_allocate_nothing_once_the_batch_pool_is_full() {
    for format in [TraceFormat::Json, TraceFormat::Binary] {
        let dir = tempfile::tempdir().unwrap();
        let sink = EventSink::create(dir.path(), format, "/app/p.py", &[]).unwrap();
        let mut builder = TraceBuilder::new(sink, Path::new("/app/p.py"));
        let path = builder.path_id(Path::new("/app/p.py"));
        // Warm-up: every pooled batch buffer gets created, and the recorder has waited for
        // the writer at least once (the channel sets up its waiting state lazily, once).
        for i in 0..BATCH_EVENTS * (BATCH_POOL * 4) {
            builder.step(path, i as i64);
        }
        let before = allocations();
        let events = BATCH_EVENTS * 3 * BATCH_POOL;
        for i in 0..events {
            builder.step(path, (i % 1000) as i64);
        }
        let made = allocations() - before;
        // Zero per event. The only allowance: if the recorder's very first wait for the
        // writer falls in this window rather than in the warm-up, the channel sets up its
        // waiting state then (two allocations, once per thread).
        assert!(
            made <= 2,
            "{format:?}: {made} allocations over {events} events"
        );
        assert_eq!(builder.finish().unwrap(), builder.events_emitted());
    }
}

/// Calls and returns with scalar values allocate nothing at all once the pool is warm:
/// arguments go into the batch as fixed-size records one by one (no argument list), and
/// the `Call` event that repeats them is put together on the writer thread. Counted per
/// event over many batches.
#[test]
fn call_and_return_events_with_scalar_values_allocate_nothing() {
    use runtime_tracing::{TypeId, ValueRecord, VariableId};
    for format in [TraceFormat::Json, TraceFormat::Binary] {
        let dir = tempfile::tempdir().unwrap();
        let sink = EventSink::create(dir.path(), format, "/app/p.py", &[]).unwrap();
        let mut builder = TraceBuilder::new(sink, Path::new("/app/p.py"));
        let f = builder.function_id("f", Path::new("/app/p.py"), 3);
        let int = |i: i64| ValueRecord::Int {
            i,
            type_id: TypeId(1),
        };
        let call = |builder: &mut TraceBuilder, i: i64| {
            builder.arg(VariableId(0), int(i));
            builder.arg(VariableId(1), ValueRecord::None { type_id: TypeId(0) });
            builder.call(f);
            builder.ret(int(i));
        };
        for i in 0..BATCH_EVENTS * (BATCH_POOL * 4) {
            call(&mut builder, i as i64);
        }
        let calls = BATCH_EVENTS * BATCH_POOL;
        let before = allocations();
        for i in 0..calls {
            call(&mut builder, i as i64);
        }
        let made = allocations() - before;
        // Each call is 4 events (two values, step, call) and each return 1; zero of their
        // own, with the same once-per-thread allowance as above.
        assert!(
            made <= 2,
            "{format:?}: {made} allocations over {calls} calls and returns"
        );
        assert_eq!(builder.finish().unwrap(), builder.events_emitted());
    }
}
