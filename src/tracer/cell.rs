//! The recorder's state cell: one [`Recorder`] slot that callbacks borrow under the GIL.
//!
//! Every access holds the GIL (each method takes a [`Python`] token), so the GIL already
//! orders them; what the cell adds is a busy flag for the one case the GIL does not cover:
//! something inside a callback releases the GIL (a C-level `repr`, an import) and another
//! thread's callback runs meanwhile. That callback finds the cell busy and drops its
//! event ([`RecorderCell::try_lock`], counted by the caller), as a `Mutex::try_lock` would,
//! but without an atomic read-modify-write on every event: the flag is a plain load and
//! store, which the GIL makes race-free.
//!
//! Session start and stop, which must get the state, wait for it with
//! [`RecorderCell::lock_waiting`], releasing the GIL between tries so that the holder can
//! finish (waiting while holding the GIL would deadlock).

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pyo3::Python;

use super::Recorder;

pub struct RecorderCell {
    busy: AtomicBool,
    slot: UnsafeCell<Option<Recorder>>,
}

// SAFETY: the slot is only reached through a guard, and a guard is only made with the GIL
// held (a `Python` token) while `busy` was clear; `busy` is set for the guard's life. Two
// guards never exist at once: the GIL serialises the check-and-set, and a thread that gets
// the GIL while another holds a guard sees `busy`.
unsafe impl Sync for RecorderCell {}

impl RecorderCell {
    pub const fn new() -> Self {
        RecorderCell {
            busy: AtomicBool::new(false),
            slot: UnsafeCell::new(None),
        }
    }

    /// The state, or `None` when a callback on another thread holds it (that callback
    /// released the GIL).
    #[inline]
    pub fn try_lock<'py>(&'static self, _py: Python<'py>) -> Option<RecorderGuard<'py>> {
        // Relaxed is enough: the GIL hand-over between threads is a full synchronisation.
        if self.busy.load(Ordering::Relaxed) {
            return None;
        }
        self.busy.store(true, Ordering::Relaxed);
        Some(RecorderGuard {
            cell: self,
            _gil: PhantomData,
        })
    }

    /// The state, waiting for a callback that holds it: the GIL is released for 1 ms
    /// between tries, so the holder can run to its end.
    pub fn lock_waiting<'py>(&'static self, py: Python<'py>) -> RecorderGuard<'py> {
        loop {
            if let Some(guard) = self.try_lock(py) {
                return guard;
            }
            py.allow_threads(|| std::thread::sleep(Duration::from_millis(1)));
        }
    }
}

impl Default for RecorderCell {
    fn default() -> Self {
        Self::new()
    }
}

/// Borrowed state; the cell is free again when the guard drops (also on unwinding).
pub struct RecorderGuard<'py> {
    cell: &'static RecorderCell,
    /// Tied to a GIL token's lifetime, and neither `Send` nor `Sync`.
    _gil: PhantomData<(Python<'py>, *mut ())>,
}

impl Deref for RecorderGuard<'_> {
    type Target = Option<Recorder>;

    #[inline]
    fn deref(&self) -> &Option<Recorder> {
        // SAFETY: this guard is the only one (see `RecorderCell`'s Sync).
        unsafe { &*self.cell.slot.get() }
    }
}

impl DerefMut for RecorderGuard<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Option<Recorder> {
        // SAFETY: as for `deref`.
        unsafe { &mut *self.cell.slot.get() }
    }
}

impl Drop for RecorderGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.cell.busy.store(false, Ordering::Relaxed);
    }
}
