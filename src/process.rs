//! Process-level events the recorder must survive: SIGTERM and `fork()`.
//!
//! **SIGTERM.** With the default disposition a SIGTERM kills the process at once and the
//! trace would be lost. `ct-record` installs a C-level handler (signal-hook) *below*
//! Python's signal table, so the program still sees `signal.getsignal(SIGTERM) ==
//! SIG_DFL`. A watcher thread receives the signal, takes the GIL, finishes the trace, and
//! then performs the default action (death by SIGTERM). If the program installs its own
//! SIGTERM handler, Python replaces ours and the program's handler runs, as under python.
//!
//! **fork().** A forked child inherits the recorder's state but not its writer thread, so
//! it must not record (a full batch would wait forever for a writer that does not exist).
//! A `pthread_atfork` child handler marks the process; the trace hook sees the mark at the
//! child's next event, forgets the inherited state without touching the parent's files,
//! and removes itself. Forked children are not recorded (documented in docs/recording.md).

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Once;

use pyo3::prelude::*;

/// Process events the trace hook must act on at its next call (one load per event).
pub static PENDING: AtomicU8 = AtomicU8::new(0);
/// In a forked child, until the hook has dropped the inherited recorder.
pub const FORKED_CHILD: u8 = 1;
/// A SIGTERM arrived: the next event finishes the trace and dies by SIGTERM, so the program
/// runs no further than it would have without the recorder (the watcher thread may have to
/// wait for the GIL).
pub const SIGTERM_PENDING: u8 = 2;
/// The address of signal-hook's SIGTERM handler, once installed (0: not installed).
static SIGTERM_HANDLER: AtomicUsize = AtomicUsize::new(0);

static ATFORK: Once = Once::new();
static SIGTERM: Once = Once::new();

extern "C" fn after_fork_in_child() {
    PENDING.fetch_or(FORKED_CHILD, Ordering::SeqCst);
    // The watcher thread does not exist in the child: give SIGTERM its default action back,
    // unless the program replaced our handler (only async-signal-safe calls here).
    let ours = SIGTERM_HANDLER.load(Ordering::SeqCst);
    if ours != 0 {
        unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGTERM, std::ptr::null(), &mut current) == 0
                && current.sa_sigaction == ours
            {
                libc::signal(libc::SIGTERM, libc::SIG_DFL);
            }
        }
    }
}

/// Registers the fork handler (once per process).
pub fn install_fork_handler() {
    ATFORK.call_once(|| unsafe {
        libc::pthread_atfork(None, None, Some(after_fork_in_child));
    });
}

/// Finishes the trace on SIGTERM, then dies by SIGTERM (once per process).
pub fn install_sigterm_handler() -> std::io::Result<()> {
    let mut result = Ok(());
    SIGTERM.call_once(|| {
        // In the handler itself (an atomic store is async-signal-safe): from the moment the
        // signal lands, the next trace event finishes the trace and dies, without waiting
        // for the watcher thread to wake up.
        // SAFETY: the action only performs an atomic read-modify-write.
        let flagged = unsafe {
            signal_hook::low_level::register(libc::SIGTERM, || {
                PENDING.fetch_or(SIGTERM_PENDING, Ordering::SeqCst);
            })
        };
        if let Err(e) = flagged {
            result = Err(e);
            return;
        }
        let mut signals = match signal_hook::iterator::Signals::new([libc::SIGTERM]) {
            Ok(s) => s,
            Err(e) => {
                result = Err(e);
                return;
            }
        };
        unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGTERM, std::ptr::null(), &mut current) == 0 {
                SIGTERM_HANDLER.store(current.sa_sigaction, Ordering::SeqCst);
            }
        }
        let spawned = std::thread::Builder::new()
            .name("ct-sigterm".into())
            .spawn(move || {
                if signals.forever().next().is_some() {
                    PENDING.fetch_or(SIGTERM_PENDING, Ordering::SeqCst);
                    Python::with_gil(finish_and_die_by_sigterm);
                }
            });
        if let Err(e) = spawned {
            result = Err(e);
        }
    });
    result
}

/// Finishes the trace, then performs SIGTERM's default action. Called with the GIL held,
/// from the watcher thread or from the trace hook, whichever runs first.
pub fn finish_and_die_by_sigterm(py: Python<'_>) {
    if let Err(e) = crate::session::stop(py, None) {
        eprintln!("ct-record: error: writing the trace on SIGTERM failed: {e}");
    }
    let _ = signal_hook::low_level::emulate_default_handler(libc::SIGTERM);
}
