//! A batch buffer whose filled prefix the writer thread may read while the recording
//! thread is still appending to it.
//!
//! This is what makes a trace crash-readable without costing the hot path anything: the
//! recording thread appends an event into a slot it owns and then publishes the new length
//! (a release store, a plain `mov` on x86). The writer thread reads the published prefix
//! (an acquire load) and serialises it, so events reach the file on the writer's clock
//! (every [`super::FLUSH_INTERVAL`]) even when the program stops producing events — a
//! program blocked in `input()` or `sleep()` still has its last events on disk — and never
//! on a lock the hot path could wait for.
//!
//! Ownership rules (upheld by [`super::sink`]):
//! - only the recording thread calls [`Slab::push`], and only while the slab is its
//!   current one;
//! - a published slot is never written again until the writer thread has [`Slab::clear`]ed
//!   the slab, which it does only after the recording thread has shipped it (given it up);
//! - the slab goes back to the recording thread (recycled) only after `clear`.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::record::Rec;

pub struct Slab {
    /// Which batch of the run this is (0, 1, 2, …): the writer thread writes batches in
    /// this order and uses it to tell the current batch from one already written.
    seq: AtomicU64,
    /// Slots `0..len` hold initialised events, published by the recording thread.
    len: AtomicUsize,
    slots: Box<[UnsafeCell<MaybeUninit<Rec>>]>,
}

// SAFETY: slots below `len` are only read (by any thread); slots at or above `len` are only
// written by the single recording thread (module docs). Records are plain data (`Send + Sync`).
unsafe impl Sync for Slab {}
unsafe impl Send for Slab {}

impl Slab {
    pub fn new(capacity: usize) -> Self {
        Slab {
            seq: AtomicU64::new(0),
            len: AtomicUsize::new(0),
            slots: (0..capacity)
                .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
                .collect(),
        }
    }

    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// Recording thread, before the slab becomes current (it is empty then).
    pub fn set_seq(&self, seq: u64) {
        debug_assert_eq!(self.len.load(Ordering::Relaxed), 0);
        self.seq.store(seq, Ordering::Release);
    }

    /// Appends `event` at slot `at` (the recording thread's own count of events in this
    /// slab) and publishes it.
    ///
    /// # Safety
    /// Only the recording thread, on its current slab, with `at` equal to the number of
    /// events pushed so far and below the capacity.
    #[inline(always)]
    pub unsafe fn push(&self, at: usize, event: Rec) {
        debug_assert!(at < self.slots.len());
        debug_assert_eq!(self.len.load(Ordering::Relaxed), at);
        (*self.slots.get_unchecked(at).get()).write(event);
        self.len.store(at + 1, Ordering::Release);
    }

    /// The events published so far.
    pub fn published(&self) -> &[Rec] {
        let len = self.len.load(Ordering::Acquire);
        // SAFETY: slots below `len` are initialised and no longer written; the cell and
        // `MaybeUninit` wrappers are `repr(transparent)`, so the layout is a `[T]`.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr() as *const Rec, len) }
    }

    /// Drops the events and empties the slab for reuse.
    ///
    /// # Safety
    /// Only the writer thread, after the recording thread has shipped the slab, and with no
    /// reference from [`Slab::published`] alive.
    pub unsafe fn clear(&self) {
        let len = self.len.swap(0, Ordering::AcqRel);
        for slot in &self.slots[..len] {
            // Most records own nothing: test for the ones that do inline, rather than run
            // the nested enums' drop glue on every slot.
            if (*slot.get()).assume_init_ref().owns_heap() {
                (*slot.get()).assume_init_drop();
            }
        }
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other thread holds the slab any more.
        unsafe { self.clear() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime_tracing::TraceLowLevelEvent;
    use std::sync::Arc;

    fn step(line: i64) -> Rec {
        Rec::Step { path: 0, line }
    }

    #[test]
    fn another_thread_reads_the_published_prefix_while_pushing_goes_on() {
        let slab = Arc::new(Slab::new(100_000));
        let reader = {
            let slab = slab.clone();
            std::thread::spawn(move || {
                // Every prefix seen is well formed and only grows.
                let mut seen = 0;
                while seen < 100_000 {
                    let p = slab.published();
                    assert!(p.len() >= seen);
                    for (i, e) in p.iter().enumerate().skip(seen) {
                        assert!(matches!(e, Rec::Step { line, .. } if *line == i as i64));
                    }
                    seen = p.len();
                }
            })
        };
        for i in 0..100_000 {
            unsafe { slab.push(i, step(i as i64)) };
        }
        reader.join().unwrap();
        unsafe { slab.clear() };
        assert!(slab.published().is_empty());
    }

    /// `clear` drops exactly the records that own memory: a boxed event, an argument or a
    /// return with a boxed value.
    #[test]
    fn the_records_clear_drops_are_the_boxed_ones() {
        use crate::writer::record::Val;
        use runtime_tracing::{TypeId, ValueRecord};
        let boxed = || {
            Val::Other(Box::new(ValueRecord::Raw {
                r: "x".into(),
                type_id: TypeId(0),
            }))
        };
        let scalars = [
            Val::Int { type_id: 0, i: 1 },
            Val::None { type_id: 0 },
            Val::Bool {
                type_id: 0,
                b: true,
            },
            Val::Float { type_id: 0, f: 1.5 },
        ];
        assert!(Rec::Event(Box::new(TraceLowLevelEvent::Path("/a.py".into()))).owns_heap());
        assert!(Rec::Arg {
            variable: 0,
            value: boxed()
        }
        .owns_heap());
        assert!(Rec::Return(boxed()).owns_heap());
        for v in scalars {
            assert!(!Rec::Arg {
                variable: 0,
                value: v.clone()
            }
            .owns_heap());
            assert!(!Rec::Return(v).owns_heap());
        }
        assert!(!step(3).owns_heap());
        assert!(!Rec::Call {
            function: 1,
            nargs: 2
        }
        .owns_heap());
    }

    #[test]
    fn clear_drops_owned_event_data() {
        let slab = Slab::new(4);
        unsafe {
            slab.push(
                0,
                Rec::Event(Box::new(TraceLowLevelEvent::Path("/a/b.py".into()))),
            );
            slab.push(
                1,
                Rec::Event(Box::new(TraceLowLevelEvent::VariableName("x".into()))),
            );
        }
        assert_eq!(slab.published().len(), 2);
        unsafe { slab.clear() };
        assert_eq!(slab.published().len(), 0);
        unsafe { slab.push(0, step(1)) };
        assert_eq!(slab.published().len(), 1);
    }
}
