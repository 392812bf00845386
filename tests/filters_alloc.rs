//! `Decision::value_action` runs on every recorded value: it must not allocate. A counting
//! global allocator (per thread, so parallel tests do not interfere) checks it.

mod filters_common;

use ct_recorder::filters::*;
use filters_common::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(|c| c.get());
    f();
    ALLOCATIONS.with(|c| c.get()) - before
}

#[test]
fn the_counter_sees_allocations() {
    assert!(allocations_during(|| drop(std::hint::black_box(vec![1u8; 16]))) > 0);
}

#[test]
fn value_action_on_a_cached_decision_does_not_allocate() {
    let body = "[[scope.rules]]\nselector = 'pkg:app.*'\n\
        [[scope.rules.value_patterns]]\nselector = 'local:tmp_*'\naction = \"drop\"\n\
        [[scope.rules.value_patterns]]\nselector = 'arg:literal:request'\naction = \"redact\"\n\
        [[scope.rules.value_patterns]]\nselector = 'local:regex:(?i)token'\naction = \"redact\"\n";
    let chain = chain(true, &[("/home/ana/app", &filter(body))]);
    let builtin = FilterChain::builtin_only();
    let decisions = [
        chain.evaluate(&chain.scope_context("/home/ana/app/app/core.py", Some("app.core"), "run")),
        builtin.evaluate(&builtin.scope_context("/home/ana/app/main.py", Some("main"), "main")),
    ];
    let ids = [
        "tmp_file",
        "request",
        "user_token",
        "password",
        "count",
        "x",
        "a_rather_long_identifier_name",
    ];
    // Warm-up: regex caches are created lazily on first use in a thread.
    for d in &decisions {
        for kind in ValueKind::ALL {
            for id in ids {
                d.value_action(kind, id);
            }
        }
    }
    let mut redacted = 0;
    let n = allocations_during(|| {
        for _ in 0..100 {
            for d in &decisions {
                for kind in ValueKind::ALL {
                    for id in ids {
                        if d.value_action(kind, id) == ValueAction::Redact {
                            redacted += 1;
                        }
                    }
                }
            }
        }
    });
    assert_eq!(n, 0, "value_action allocated {n} times");
    assert!(redacted > 0);
}

#[test]
fn cloning_a_decision_does_not_allocate() {
    let chain = FilterChain::builtin_only();
    let d = chain.evaluate(&chain.scope_context("/x/m.py", Some("m"), "f"));
    let n = allocations_during(|| {
        for _ in 0..100 {
            let c = d.clone();
            std::hint::black_box(&c);
        }
    });
    assert_eq!(n, 0);
}
