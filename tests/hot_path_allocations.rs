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

/// Calls and returns: the builder adds no allocation of its own to an event whose values
/// the caller has built (the argument list is the caller's; scalar values own no heap
/// memory), once the pool is warm. Counted per event over many batches.
#[test]
fn call_and_return_events_allocate_nothing_beyond_their_argument_list() {
    use runtime_tracing::{FullValueRecord, TypeId, ValueRecord, VariableId};
    for format in [TraceFormat::Json, TraceFormat::Binary] {
        let dir = tempfile::tempdir().unwrap();
        let sink = EventSink::create(dir.path(), format, "/app/p.py", &[]).unwrap();
        let mut builder = TraceBuilder::new(sink, Path::new("/app/p.py"));
        let f = builder.function_id("f", Path::new("/app/p.py"), 3);
        let arg = |i: i64| {
            vec![FullValueRecord {
                variable_id: VariableId(0),
                value: ValueRecord::Int {
                    i,
                    type_id: TypeId(1),
                },
            }]
        };
        let ret = |i: i64| ValueRecord::Int {
            i,
            type_id: TypeId(1),
        };
        for i in 0..BATCH_EVENTS * (BATCH_POOL * 4) {
            builder.call(f, arg(i as i64));
            builder.ret(ret(i as i64));
        }
        let calls = BATCH_EVENTS * BATCH_POOL;
        let mut made = 0;
        for i in 0..calls {
            let args = arg(i as i64);
            let before = allocations();
            builder.call(f, args);
            builder.ret(ret(i as i64));
            made += allocations() - before;
        }
        // Each call is 3 events (value, step, call) and each return 1; zero of their own,
        // with the same once-per-thread allowance as above.
        assert!(
            made <= 2,
            "{format:?}: {made} allocations over {calls} calls and returns"
        );
        assert_eq!(builder.finish().unwrap(), builder.events_emitted());
    }
}
