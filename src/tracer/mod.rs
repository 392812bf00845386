//! The recorder's shared logic, and the seam its two back ends plug into.
//!
//! A back end turns the interpreter's callbacks into the calls of [`Recorder`] below
//! (`enter`, `line`, `leave`, `exception`); everything else is shared: the code-object cache,
//! naming, filters, shadow comparison, value encoding, the per-thread call stacks and every
//! call into the writer. The back end is chosen at run time by interpreter version
//! ([`Backend::for_interpreter`]):
//! - [`settrace`]: CPython 3.11, a C trace function installed with `PyEval_SetTrace` on every
//!   thread;
//! - [`monitoring`]: CPython 3.12 and 3.13, C-level `sys.monitoring` (PEP 669) callbacks.
//!
//! Everything that costs more than a pointer comparison happens once per code object and is
//! cached in a [`CodeInfo`] that holds a strong reference to the code object: CPython reuses
//! a freed code object's address at once, so an address alone would be an unsafe cache key.
//!
//! Per thread the recorder keeps a stack of (key, code) entries pushed on call and popped
//! on return; the key is what the back end can tell frames apart by (the frame address on
//! 3.11, the code object on 3.12+, where callbacks get no frame). Generators and coroutines
//! get a call each time they resume and a return each time they suspend, so each thread's
//! call stack stays balanced.
//!
//! Reentrancy: callbacks run with the GIL held, and CPython does not call a thread's
//! trace function (or a monitoring tool) while one is already running. Another thread can only
//! run if something in the callback releases the GIL; the state cell ([`cell`]) is then busy
//! and that thread's event is dropped and counted (`try_lock`), never waited for (waiting
//! could deadlock on the GIL).

pub mod cell;
pub mod ffi;
pub mod monitoring;
pub mod profile;
pub mod scope;
pub mod settrace;
pub mod shadow;

use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::ffi as py;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};
use runtime_tracing::{EventLogKind, FunctionId, PathId, TypeKind, ValueRecord, VariableId};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::encode::{truncate, Encoder, Limits};
use crate::filters::{Decision, Exec, ValueAction, ValueKind};
use crate::naming::{
    is_synthetic_filename, read_globals_facts, CodeFacts, ModuleNamer, PySysModules,
};
use crate::writer::{TraceBuilder, ValueTo};
use scope::Scoping;

/// What to do when the recorder itself fails (a bug, a Python error inside the hook, a
/// panic). The traced program's behaviour is the priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Stop recording, keep what was recorded, let the program finish undisturbed.
    Disable,
    /// Fail loudly: raise `ct_recorder.RecorderError` in the program, exit status 70.
    Abort,
}

#[derive(Default, Debug, Clone, Copy, serde::Serialize)]
pub struct EventCounts {
    pub calls: u64,
    pub returns: u64,
    pub lines: u64,
    pub exceptions: u64,
    /// Events of code the recorder does not record (its own code, synthetic files).
    pub skipped_code_objects: u64,
    pub code_objects: u64,
    pub threads: u64,
    /// Interpreter callbacks that reached the recorder (trace-function calls on 3.11,
    /// `sys.monitoring` callbacks on 3.12+), recorded or not: what skipped code costs.
    pub callbacks: u64,
}

/// The program's entry code object (address), set by the launcher: at its first call, the
/// frame is made the bottom of the visible stack (each back end's `cut_entry_frame`).
pub static ENTRY_CODE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Events that arrived while another thread held the recorder state (see module docs).
pub static DROPPED_REENTRANT: AtomicU64 = AtomicU64::new(0);

struct CodeInfo {
    /// Keeps the code object (and so its address) alive for the whole session.
    _code: Py<PyAny>,
    record: bool,
    path_id: PathId,
    function_id: FunctionId,
    /// `PyFrame_GetLasti` at the call event of a fresh (not resumed) frame: the offset of
    /// the code's `RESUME 0`.
    start_lasti: c_int,
    args: Vec<ArgSlot>,
    /// What the filter decision's value policy does with this code's return values
    /// (`ret:` patterns test the function's name, `co_name`): decided once, here, rather
    /// than by a pattern match per return.
    ret_action: ValueAction,
    /// The function's name (`co_name`), for messages.
    name: String,
}

impl CodeInfo {
    /// A code object the recorder keeps alive but does not record (its own code, the
    /// launcher's frames, synthetic files, code the filters skip).
    fn not_recorded(code: Py<PyAny>) -> Self {
        CodeInfo {
            _code: code,
            record: false,
            path_id: PathId(0),
            function_id: FunctionId(0),
            start_lasti: -1,
            args: Vec::new(),
            ret_action: ValueAction::Allow,
            name: String::new(),
        }
    }
}

/// `--max-trace-size` in `trace_metadata.json` (`summary.trace_size_cap`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct SizeCapReport {
    /// The cap in bytes; `null`: no cap (`--max-trace-size unlimited`).
    pub limit_bytes: Option<u64>,
    /// The events file reached the cap and recording stopped there.
    pub reached: bool,
    /// When reached: the events in the file (it ends after the batch that reached the cap).
    pub events_written: Option<u64>,
    /// When reached: the events file's size, closed.
    pub bytes_written: Option<u64>,
    /// When reached: what went on after the cut: `naming` (shadow comparisons and metrics
    /// of new code objects) or `nothing` (the hooks were removed).
    pub after_cut: Option<&'static str>,
}

/// One parameter: its fast-locals index is its position in `co_varnames`.
struct ArgSlot {
    name: Py<PyString>,
    variable: VariableId,
    /// Captured by an inner function: by the call event the slot already holds a cell.
    is_cell: bool,
    /// What the filter decision's value policy does with this argument (`arg:` patterns
    /// test its name), decided once per code object.
    action: ValueAction,
}

#[derive(Clone, Copy)]
struct Entry {
    frame: usize,
    code: u32,
}

/// The module-naming side of the recorder: the primary engine and `sys.modules` as the
/// legacy scan sees it.
pub struct Naming {
    pub primary: Box<dyn ModuleNamer + Send>,
    pub modules: PySysModules,
}

/// Names and fallbacks counted per engine outcome (reported in `trace_metadata.json`).
#[derive(Default, Debug, Clone, serde::Serialize)]
pub struct NamingCounts {
    pub named: u64,
    /// reason -> count
    pub fallbacks: std::collections::BTreeMap<&'static str, u64>,
    /// The legacy resolvers' counters, when the legacy engine ran (as the primary or the
    /// shadow engine): the label resolver's and the filter engine's own (spec L7).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub legacy_resolvers: std::collections::BTreeMap<&'static str, serde_json::Value>,
}

pub struct Recorder {
    /// The trace; `None` in evidence-only mode (`--evidence-only`), where the writer is not
    /// created and no code object is recorded: first sights are named, filtered and
    /// compared, then the back end stops delivering that code's events.
    builder: Option<TraceBuilder>,
    naming: Naming,
    pub(crate) naming_counts: NamingCounts,
    pub(crate) scoping: Scoping,
    pub(crate) shadow: Option<shadow::ShadowSide>,
    pub(crate) metrics: Option<std::sync::Arc<ct_shadow::Metrics>>,
    /// Event counts already added to the metrics (synced in steps, off the per-event path).
    metrics_synced: EventCounts,
    encoder: Encoder,
    code_index: FxHashMap<usize, u32>,
    /// A direct-mapped cache in front of `code_index` (address, index), for the code
    /// objects of the hot loop: one multiply and one compare instead of a hash-table probe.
    /// Entries stay valid for the whole session: `code_index` keeps every code object it
    /// names alive (its `CodeInfo`), so an address in it is never reused, and nothing is
    /// removed from it. Address 0 (no code object has it) marks an empty slot.
    code_cache: Box<[(usize, u32); CODE_CACHE_SLOTS]>,
    codes: Vec<CodeInfo>,
    cur_tid: u64,
    cur_stack: Vec<Entry>,
    stacks: FxHashMap<u64, Vec<Entry>>,
    seen_threads: FxHashSet<u64>,
    /// Stretches not recorded because `sys.settrace` replaced the hook.
    gaps: Vec<settrace::RecordingGap>,
    own_dir: Option<String>,
    resume_opcode: u8,
    /// How argument values are read (chosen by a self-check at session start).
    args_from: ArgAccess,
    /// The 3.11 frame layout was verified at start (fast locals, the entry-frame link).
    pub(crate) fast_locals: bool,
    /// The callbacks this recorder is fed by.
    backend: Backend,
    /// The thread state's id is read in place (layout checked at start).
    tid_inline: bool,
    /// 3.11: the current thread state is read from the runtime in place (layout checked at
    /// start).
    tstate_inline: bool,
    /// Both of the above: no call into libpython to tell the thread of an event.
    tid_fast: bool,
    /// The program's entry frame while its `previous` link is cut, with the saved link.
    pub(crate) entry_cut: Option<(usize, usize)>,
    on_error: OnError,
    pub(crate) disabled: bool,
    /// The events file's size cap, as the writer thread reports it.
    size_cap: std::sync::Arc<crate::writer::SizeCap>,
    /// The events file reached `--max-trace-size`: nothing more is recorded. The back ends
    /// keep only naming (new code objects are still named, compared and counted) while
    /// shadow comparison or metrics are on; otherwise the hooks are gone.
    pub(crate) capped: bool,
    /// The size cap's warning was printed (exactly once per run).
    cap_warned: bool,
    /// Naming goes on after the size cap: there is evidence to gather (shadow comparison
    /// or metrics). Fixed at start: the stop takes the shadow side away before reporting.
    names_after_cap: bool,
    pub(crate) errors: Vec<String>,
    pub(crate) error_count: u64,
    pub(crate) counts: EventCounts,
}

pub struct RecorderOptions {
    pub naming: Naming,
    pub scoping: Scoping,
    pub shadow: Option<shadow::ShadowSide>,
    pub metrics: Option<std::sync::Arc<ct_shadow::Metrics>>,
    pub own_dir: Option<String>,
    pub on_error: OnError,
    pub limits: Limits,
}

impl Recorder {
    /// `builder`: the trace, or `None` for an evidence-only session.
    pub fn new(
        py: Python<'_>,
        builder: Option<TraceBuilder>,
        opts: RecorderOptions,
    ) -> PyResult<Self> {
        // CPython 3.11's RESUME opcode (Lib/opcode.py); a constant rather than an import of
        // `opcode`, which a file next to the program could shadow.
        let resume_opcode: u8 = 151;
        let backend = Backend::for_interpreter(py);
        let fast_locals = backend == Backend::SetTrace && fast_locals_layout_ok(py);
        let args_from = match backend {
            Backend::SetTrace if fast_locals => ArgAccess::FastLocals,
            Backend::Monitoring if get_var_ok(py) => ArgAccess::GetVar,
            _ => ArgAccess::Locals,
        };
        // SAFETY: the GIL is held (`py`).
        let tid_inline = unsafe { ffi::thread_id_layout_ok() };
        if !tid_inline {
            tracing::info!("thread-state layout not as expected: thread ids through the C API");
        }
        // SAFETY: the GIL is held (`py`).
        let tstate_inline = unsafe { ffi::current_tstate_layout_ok() };
        if !tstate_inline && backend == Backend::SetTrace {
            tracing::info!("runtime layout not as expected: the current thread through the C API");
        }
        // Evidence-only: no events file, so a cap that is never reached.
        let size_cap = builder
            .as_ref()
            .map(|b| b.size_cap().clone())
            .unwrap_or_default();
        Ok(Recorder {
            size_cap,
            capped: false,
            cap_warned: false,
            names_after_cap: opts.shadow.is_some() || opts.metrics.is_some(),
            builder,
            naming: opts.naming,
            naming_counts: NamingCounts::default(),
            scoping: opts.scoping,
            shadow: opts.shadow,
            metrics: opts.metrics,
            metrics_synced: EventCounts::default(),
            encoder: Encoder::new(py, opts.limits),
            code_index: FxHashMap::default(),
            code_cache: Box::new([(0, 0); CODE_CACHE_SLOTS]),
            codes: Vec::new(),
            cur_tid: 0,
            cur_stack: Vec::with_capacity(64),
            stacks: FxHashMap::default(),
            seen_threads: FxHashSet::default(),
            gaps: Vec::new(),
            own_dir: opts.own_dir,
            resume_opcode,
            args_from,
            fast_locals,
            backend,
            tid_inline,
            tstate_inline,
            tid_fast: tid_inline && tstate_inline,
            entry_cut: None,
            on_error: opts.on_error,
            disabled: false,
            errors: Vec::new(),
            error_count: 0,
            counts: EventCounts::default(),
        })
    }

    /// The trace (`None` in evidence-only mode).
    pub fn builder_mut(&mut self) -> Option<&mut TraceBuilder> {
        self.builder.as_mut()
    }

    /// No trace: first sights are compared, nothing is recorded.
    pub fn evidence_only(&self) -> bool {
        self.builder.is_none()
    }

    /// Whether naming goes on after the size cap: only for the evidence (shadow
    /// comparisons, metrics); a plain recording has nothing left to do.
    pub fn names_after_cap(&self) -> bool {
        self.names_after_cap
    }

    /// The events file reached `--max-trace-size` (seen at the next callback): recording
    /// stops here, with the run's one warning. Returns whether the hooks stay (for naming
    /// alone); if not, the recorder is disabled and the caller removes them.
    fn reach_size_cap(&mut self) -> bool {
        self.capped = true;
        let keep = self.names_after_cap();
        if !keep {
            self.disabled = true;
        }
        self.warn_size_cap();
        keep
    }

    /// Prints the size cap's warning, once, when the cap was reached. Also called at stop:
    /// the cap may be reached after the program's last callback.
    pub fn warn_size_cap(&mut self) {
        if self.cap_warned {
            return;
        }
        let (Some(cut), Some(limit)) = (self.size_cap.cut(), self.size_cap.limit()) else {
            return;
        };
        self.cap_warned = true;
        let file = self
            .builder
            .as_ref()
            .and_then(|b| b.events_path().file_name())
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let after = if self.names_after_cap() {
            "; shadow comparisons and metrics go on"
        } else {
            ""
        };
        crate::session::say(&format!(
            "ct-record: warning: the trace reached --max-trace-size ({limit} bytes): recording \
             stopped after event {} ({file} closed at {} bytes); the program runs on \
             unchanged{after}. See trace_size_cap in trace_metadata.json.",
            cut.events, cut.bytes
        ));
    }

    /// Which in-place reads this session's layout checks allowed.
    pub fn fast_paths(&self) -> FastPaths {
        let backend = self.backend;
        FastPaths {
            backend: backend.as_str(),
            arguments: match self.args_from {
                ArgAccess::FastLocals => "fast-locals",
                ArgAccess::GetVar => "frame-getvar",
                ArgAccess::Locals => "frame-locals",
            },
            frame_fields_in_place: (backend == Backend::SetTrace).then_some(self.fast_locals),
            thread_id_in_place: self.tid_inline,
            current_thread_in_place: (backend == Backend::SetTrace).then_some(self.tstate_inline),
            small_int_in_place: self.encoder.small_int_inline(),
        }
    }

    /// What `trace_metadata.json` says about the size cap.
    pub fn size_cap_report(&self) -> SizeCapReport {
        let cut = self.size_cap.cut();
        SizeCapReport {
            limit_bytes: self.size_cap.limit(),
            reached: cut.is_some(),
            events_written: cut.map(|c| c.events),
            bytes_written: cut.map(|c| c.bytes),
            after_cut: cut.map(|_| {
                if self.names_after_cap() {
                    "naming"
                } else {
                    "nothing"
                }
            }),
        }
    }

    /// The legacy resolvers' counters, keyed by what they name (see `NamingCounts`).
    pub fn legacy_resolver_reports(
        &self,
    ) -> std::collections::BTreeMap<&'static str, serde_json::Value> {
        let mut reports = std::collections::BTreeMap::new();
        // The legacy engine names labels as the primary engine or as the shadow one.
        let shadow_namer = self.shadow.as_ref().map(|side| &side.namer);
        for namer in std::iter::once(&self.naming.primary).chain(shadow_namer) {
            if let Some(report) = namer.report() {
                reports.insert("labels", report);
            }
        }
        if let Some(report) = self.scoping.legacy_filter.as_ref().and_then(|n| n.report()) {
            reports.insert("filters", report);
        }
        reports
    }

    pub fn counts(&self) -> EventCounts {
        let mut counts = self.counts;
        // Callbacks that never take the recorder's state (monitoring's evidence-only unwind).
        counts.callbacks += monitoring::LIGHT_CALLBACKS.load(Ordering::Relaxed);
        counts
    }

    pub fn has_seen_thread(&self, tid: u64) -> bool {
        self.seen_threads.contains(&tid)
    }

    /// Notes a stretch of a thread that was not recorded (see [`settrace`]).
    pub fn note_gap(&mut self, gap: settrace::RecordingGap) {
        if self.gaps.len() < 100 {
            self.gaps.push(gap);
        }
    }

    /// The innermost recorded function on thread `tid` as last seen: `name (file:line)`.
    pub fn innermost_position(&self, py: Python<'_>, tid: u64) -> Option<String> {
        let stack = if tid == self.cur_tid {
            &self.cur_stack
        } else {
            self.stacks.get(&tid)?
        };
        let info = stack
            .iter()
            .rev()
            .map(|e| &self.codes[e.code as usize])
            .find(|info| info.record)?;
        let code = info._code.bind(py);
        let file: String = code.getattr("co_filename").ok()?.extract().ok()?;
        let line: i64 = code.getattr("co_firstlineno").ok()?.extract().ok()?;
        Some(format!("{} ({file}:{line})", info.name))
    }

    /// Threads that lost the hook and ended before stop (3.11): seen by the recorder, no
    /// longer alive, and with recorded frames still open on their stack — a thread that
    /// ends with the hook returns from every frame it entered. Not after the recorder
    /// stopped following events itself (disabled, or at the size cap).
    pub fn threads_ended_without_hook(&self, py: Python<'_>) -> Vec<settrace::RecordingGap> {
        if self.disabled
            || self.capped
            || self.evidence_only()
            || Backend::for_interpreter(py) != Backend::SetTrace
        {
            return Vec::new();
        }
        let live: FxHashSet<u64> = settrace::live_thread_ids().into_iter().collect();
        let mut ended: Vec<u64> = self
            .seen_threads
            .iter()
            .copied()
            .filter(|tid| !live.contains(tid))
            .filter(|tid| {
                let stack = if *tid == self.cur_tid {
                    &self.cur_stack
                } else {
                    match self.stacks.get(tid) {
                        Some(s) => s,
                        None => return false,
                    }
                };
                stack.iter().any(|e| self.codes[e.code as usize].record)
            })
            .collect();
        ended.sort_unstable();
        ended
            .into_iter()
            .map(|tid| settrace::RecordingGap {
                thread: tid,
                state: "lost",
                at: self
                    .innermost_position(py, tid)
                    .unwrap_or_else(|| "?".into()),
                why: settrace::ENDED_WITHOUT_HOOK,
            })
            .collect()
    }

    /// The gaps noted so far.
    pub fn take_gaps(&mut self) -> Vec<settrace::RecordingGap> {
        std::mem::take(&mut self.gaps)
    }

    /// Switches the per-thread state to the calling thread (first sight starts it).
    #[inline]
    pub(crate) fn current_thread(&mut self) {
        // SAFETY: called with the GIL held, so there is a current thread state; the in-place
        // read was checked at start.
        let tid = unsafe {
            if self.tid_fast {
                ffi::thread_id_inline(ffi::current_tstate_inline())
            } else {
                self.thread_id_through_api()
            }
        };
        if tid != self.cur_tid {
            self.switch_thread(tid);
        }
    }

    /// The current thread's id when not both reads are in place (3.12+, or a failed check).
    ///
    /// # Safety
    /// GIL held.
    #[inline]
    unsafe fn thread_id_through_api(&self) -> u64 {
        unsafe {
            let ts = py::PyThreadState_Get();
            if self.tid_inline {
                ffi::thread_id_inline(ts)
            } else {
                ffi::PyThreadState_GetID(ts)
            }
        }
    }

    #[cold]
    fn switch_thread(&mut self, tid: u64) {
        let old = std::mem::take(&mut self.cur_stack);
        if self.cur_tid != 0 {
            self.stacks.insert(self.cur_tid, old);
        }
        self.cur_stack = self.stacks.remove(&tid).unwrap_or_default();
        self.cur_tid = tid;
        let new = self.seen_threads.insert(tid);
        self.counts.threads += u64::from(new);
        if let Some(builder) = self.builder.as_mut() {
            if new {
                builder.thread_start(tid);
            } else {
                builder.thread_switch(tid);
            }
        }
    }

    /// The cache index of `code` (a borrowed code object), registering it at first sight
    /// with the globals of the frame running it; `true` when it was registered just now.
    #[inline]
    pub(crate) fn code_idx<'py>(
        &mut self,
        py: Python<'py>,
        code: *mut py::PyObject,
        globals: impl FnOnce() -> Option<Bound<'py, PyAny>>,
    ) -> Result<(u32, bool), String> {
        let addr = code as usize;
        let slot = code_cache_slot(addr);
        let (cached, idx) = self.code_cache[slot];
        if cached == addr {
            return Ok((idx, false));
        }
        if let Some(idx) = self.code_index.get(&addr) {
            self.code_cache[slot] = (addr, *idx);
            return Ok((*idx, false));
        }
        // SAFETY: `code` is a live object CPython handed to the callback.
        let bound = unsafe { Bound::from_borrowed_ptr(py, code) };
        let globals = globals();
        self.register_code(py, &bound, globals.as_ref())
            .map(|idx| (idx, true))
    }

    /// Whether events of this code are recorded.
    #[inline]
    pub(crate) fn is_recorded(&self, idx: u32) -> bool {
        self.codes[idx as usize].record
    }

    /// `PyFrame_GetLasti` of a fresh frame of this code at its call event (3.11).
    #[inline]
    pub(crate) fn start_lasti(&self, idx: u32) -> c_int {
        self.codes[idx as usize].start_lasti
    }

    /// The code objects whose events are recorded (back ends that switch events on per code
    /// switch them off again at stop).
    pub(crate) fn recorded_codes(&self) -> impl Iterator<Item = &Py<PyAny>> {
        self.codes.iter().filter(|c| c.record).map(|c| &c._code)
    }

    fn register_code(
        &mut self,
        py: Python<'_>,
        code: &Bound<'_, PyAny>,
        globals: Option<&Bound<'_, PyAny>>,
    ) -> Result<u32, String> {
        let err = |e: PyErr| format!("reading a code object: {e}");
        // Lossy: a file name that is not valid UTF-8 (surrogate escapes) shows U+FFFD in the
        // trace, whose paths are text.
        let text = |attr: &Bound<'_, PyString>| -> Result<String, String> {
            let value = code.getattr(attr).map_err(err)?;
            let s = value
                .downcast_into::<PyString>()
                .map_err(|e| e.to_string())?;
            Ok(s.to_string_lossy().into_owned())
        };
        let filename = {
            let value = code.getattr(intern!(py, "co_filename")).map_err(err)?;
            let s = value
                .downcast_into::<PyString>()
                .map_err(|e| e.to_string())?;
            match s.to_str() {
                Ok(s) => s.to_owned(),
                // Surrogate escapes: back to the file system's bytes, as the program path.
                Err(_) => {
                    let bytes = unsafe {
                        Bound::from_owned_ptr_or_err(py, py::PyUnicode_EncodeFSDefault(s.as_ptr()))
                    }
                    .map_err(err)?;
                    let bytes = bytes
                        .downcast_into::<pyo3::types::PyBytes>()
                        .map_err(|e| e.to_string())?;
                    crate::path_text(bytes.as_bytes())
                }
            }
        };
        let qualname = text(intern!(py, "co_qualname"))?;
        let mut record = !self.is_own_code(&filename) && !is_synthetic_filename(&filename);
        let mut decision = None;
        let mut facts = None;
        let mut primary = None;
        if record {
            // Facts are gathered once and shared by naming and filters.
            let (globals_name, spec_name) = read_globals_facts(globals);
            let f = CodeFacts::new(
                filename.as_str(),
                qualname.as_str(),
                globals_name,
                spec_name,
            );
            let engine = self.naming.primary.engine();
            let started = std::time::Instant::now();
            // Every resolver below (labels, filters, shadow) sees sys.modules as it is now.
            let moment = self.naming.modules.moment();
            let primary_naming = f
                .is_module
                .then(|| self.naming.primary.name(&f, &self.naming.modules));
            if let Some(reason) = primary_naming.as_ref().and_then(|n| n.fallback) {
                tracing::info!(
                    engine = engine.as_str(),
                    reason = shadow::fallback_label(reason),
                    detail = ?reason,
                    file = %filename,
                    "module name fell back to <module>"
                );
            }
            let (ctx, d) = self.scoping.decide(engine, &f, &self.naming.modules);
            if self.metrics.is_some() || self.shadow.is_some() {
                let elapsed_ns = started.elapsed().as_nanos() as u64;
                let (name, fallback) = shadow::compared_name(
                    &f,
                    primary_naming
                        .clone()
                        .unwrap_or_else(crate::naming::Naming::not_applicable),
                    ctx.module_name.clone(),
                );
                let mut result = ct_shadow::EngineResult::unnamed(shadow::shadow_engine(engine));
                result.name = name;
                result.fallback = fallback.map(shadow::fallback_label);
                result.filter = Some(shadow::filter_outcome(&self.scoping.chain, &ctx, &d));
                result.elapsed_ns = elapsed_ns;
                if let Some(m) = &self.metrics {
                    m.observe_resolution(&result);
                }
                if let Some(side) = self.shadow.as_mut() {
                    // The OS thread id, as the divergence log documents (trace events use
                    // CPython's thread-state ids).
                    let native_tid = unsafe { ffi::PyThread_get_thread_native_id() } as u64;
                    side.compare(
                        &f,
                        result,
                        &mut self.scoping,
                        &self.naming.modules,
                        native_tid,
                    );
                }
            }
            drop(moment);
            primary = primary_naming;
            if d.exec() == Exec::Skip {
                record = false;
                self.scoping.skipped_by_filter += 1;
            }
            decision = Some(d);
            facts = Some(f);
        }
        let idx = self.codes.len() as u32;
        self.counts.code_objects += 1;
        // Evidence-only: compared above, never recorded (and not counted as skipped); the
        // primary engine's names and fallbacks are counted as in a recording.
        if record && self.builder.is_none() {
            if let (Some(naming), Some(facts)) = (primary.take(), facts.as_ref()) {
                self.module_label(facts, naming);
            }
            record = false;
        } else if !record {
            self.counts.skipped_code_objects += 1;
        }
        if !record {
            self.codes
                .push(CodeInfo::not_recorded(code.clone().unbind()));
            self.code_index.insert(code.as_ptr() as usize, idx);
            return Ok(idx);
        }
        let Some(builder) = self.builder.as_mut() else {
            unreachable!("recorded code has a trace")
        };
        let firstlineno: i64 = code
            .getattr(intern!(py, "co_firstlineno"))
            .and_then(|v| v.extract())
            .map_err(err)?;
        let argcount: usize = code
            .getattr(intern!(py, "co_argcount"))
            .and_then(|v| v.extract())
            .map_err(err)?;
        let kwonly: usize = code
            .getattr(intern!(py, "co_kwonlyargcount"))
            .and_then(|v| v.extract())
            .map_err(err)?;
        let flags: u32 = code
            .getattr(intern!(py, "co_flags"))
            .and_then(|v| v.extract())
            .map_err(err)?;
        let varnames = code.getattr(intern!(py, "co_varnames")).map_err(err)?;
        let varnames = varnames.downcast::<PyTuple>().map_err(|e| e.to_string())?;
        let co_code = code.getattr(intern!(py, "co_code")).map_err(err)?;
        let co_code = co_code.downcast::<PyBytes>().map_err(|e| e.to_string())?;

        const CO_VARARGS: u32 = 0x4;
        const CO_VARKEYWORDS: u32 = 0x8;
        let nargs = argcount
            + kwonly
            + usize::from(flags & CO_VARARGS != 0)
            + usize::from(flags & CO_VARKEYWORDS != 0);
        let cellvars = code.getattr(intern!(py, "co_cellvars")).map_err(err)?;
        let mut args = Vec::with_capacity(nargs);
        for name in varnames.iter().take(nargs) {
            let name = name
                .downcast_into::<PyString>()
                .map_err(|e| e.to_string())?;
            let ident = name.to_string_lossy().into_owned();
            let variable = builder.variable_id(&ident);
            let is_cell = cellvars.contains(&name).unwrap_or(false);
            let action = decision
                .as_ref()
                .map_or(ValueAction::Allow, |d: &Decision| {
                    d.value_action(ValueKind::Arg, &ident)
                });
            args.push(ArgSlot {
                name: name.unbind(),
                variable,
                is_cell,
                action,
            });
        }

        let co_name: String = code
            .getattr(intern!(py, "co_name"))
            .and_then(|v| v.extract())
            .map_err(err)?;
        let facts = facts.expect("facts are gathered for recorded code");
        let label = match primary {
            Some(naming) => self.module_label(&facts, naming),
            None => qualname,
        };
        let path = Path::new(&filename);
        let Some(builder) = self.builder.as_mut() else {
            unreachable!("recorded code has a trace")
        };
        let path_id = builder.path_id(path);
        let function_id = builder.function_id(&label, path, firstlineno);
        let start_lasti = resume_zero_offset(co_code.as_bytes(), self.resume_opcode);
        self.codes.push(CodeInfo {
            _code: code.clone().unbind(),
            record,
            path_id,
            function_id,
            start_lasti,
            args,
            ret_action: decision.as_ref().map_or(ValueAction::Allow, |d| {
                d.value_action(ValueKind::Return, &co_name)
            }),
            name: co_name,
        });
        self.code_index.insert(code.as_ptr() as usize, idx);
        Ok(idx)
    }

    /// The runtime label of a `<module>` code object from the primary engine: `<NAME>`, or
    /// `<module>` on fallback (counted by reason). Facts are read from the frame at the
    /// code object's first start, without running Python code.
    /// The runtime label of a `<module>` code object from the primary engine: `<NAME>`, or
    /// `<module>` on fallback (counted by reason).
    fn module_label(&mut self, facts: &CodeFacts, naming: crate::naming::Naming) -> String {
        let (filename, qualname) = (facts.filename.as_str(), facts.qualname.as_str());
        match naming.fallback {
            Some(reason) => {
                tracing::debug!(
                    "{} engine: no module name for {filename} ({}); labelled <module>",
                    self.naming.primary.engine().as_str(),
                    reason.as_str()
                );
                *self
                    .naming_counts
                    .fallbacks
                    .entry(reason.as_str())
                    .or_default() += 1;
            }
            None if naming.name.is_some() => self.naming_counts.named += 1,
            None => {}
        }
        naming.label(true, qualname)
    }

    /// Adds the events counted since the last sync to `ct_trace_events_total`.
    pub fn sync_metrics(&mut self) {
        use ct_shadow::TraceEvent;
        let Some(m) = &self.metrics else { return };
        let (now, then) = (self.counts, self.metrics_synced);
        m.add_trace_events(TraceEvent::Call, now.calls - then.calls);
        m.add_trace_events(TraceEvent::Return, now.returns - then.returns);
        m.add_trace_events(TraceEvent::Line, now.lines - then.lines);
        m.add_trace_events(TraceEvent::Exception, now.exceptions - then.exceptions);
        self.metrics_synced = now;
    }

    /// Marks the code of every frame on the calling thread's stack as not recorded: the
    /// launcher's frames (console script, CLI shim, launcher) stay running while the
    /// program runs and would otherwise show up as line events.
    pub fn skip_current_stack(&mut self, py: Python<'_>) {
        // SAFETY: GIL held; GetFrame/GetBack return new references released here.
        unsafe {
            let mut frame = py::PyThreadState_GetFrame(py::PyThreadState_Get());
            while !frame.is_null() {
                let code = py::PyFrame_GetCode(frame) as *mut py::PyObject;
                let key = code as usize;
                if !self.code_index.contains_key(&key) {
                    let idx = self.codes.len() as u32;
                    self.codes
                        .push(CodeInfo::not_recorded(Py::from_borrowed_ptr(py, code)));
                    self.code_index.insert(key, idx);
                }
                py::Py_DECREF(code);
                let back = py::PyFrame_GetBack(frame);
                py::Py_DECREF(frame.cast());
                frame = back;
            }
        }
    }

    fn is_own_code(&self, filename: &str) -> bool {
        match &self.own_dir {
            Some(dir) => filename.starts_with(dir.as_str()),
            None => false,
        }
    }

    /// A frame of code `idx` starts (`fresh`) or resumes: pushed on the thread's stack and,
    /// when recorded, a call in the trace with the argument values of a fresh frame.
    /// `frame` gives the frame to read arguments from; it is only asked for when needed.
    pub(crate) fn enter(
        &mut self,
        py: Python<'_>,
        key: usize,
        idx: u32,
        fresh: bool,
        frame: impl FnOnce() -> *mut py::PyFrameObject,
    ) {
        self.cur_stack.push(Entry {
            frame: key,
            code: idx,
        });
        if !self.codes[idx as usize].record {
            return;
        }
        self.counts.calls += 1;
        if self.counts.calls.is_multiple_of(4096) {
            self.sync_metrics();
        }
        let info = &self.codes[idx as usize];
        let function_id = info.function_id;
        if fresh && !info.args.is_empty() {
            let frame = frame();
            if !frame.is_null() {
                self.record_args(py, frame, idx);
            }
        }
        if let Some(builder) = self.builder.as_mut() {
            builder.call(function_id);
        }
    }

    /// Argument values of a fresh frame, encoded and appended one by one (`arg` records,
    /// before the call's): nothing is collected, so a call whose arguments are scalars
    /// allocates nothing.
    fn record_args(&mut self, py: Python<'_>, frame: *mut py::PyFrameObject, idx: u32) {
        let Some(builder) = self.builder.as_mut() else {
            return;
        };
        let info = &self.codes[idx as usize];
        let locals = match self.args_from {
            ArgAccess::Locals => {
                // A dict on 3.11 and 3.12, a write-through proxy on 3.13 (PEP 667).
                let locals = unsafe { ffi::PyFrame_GetLocals(frame) };
                if locals.is_null() {
                    unsafe { py::PyErr_Clear() };
                    return;
                }
                Some(unsafe { Bound::from_owned_ptr(py, locals) })
            }
            _ => None,
        };
        for (i, slot) in info.args.iter().enumerate() {
            // A borrowed pointer to the value (NULL: unbound), and the reference that keeps
            // it alive where the read gave a new one.
            let mut _owned: Option<Bound<'_, PyAny>> = None;
            let v: *mut py::PyObject = match self.args_from {
                ArgAccess::FastLocals => {
                    // SAFETY: layout verified at start; i < nargs <= co_nlocalsplus. The
                    // frame holds the value for the whole callback.
                    let mut v = unsafe { ffi::fast_local(frame, i) };
                    if slot.is_cell && !v.is_null() && unsafe { ffi::is_cell(v) } {
                        v = unsafe { ffi::cell_contents(v) };
                    }
                    v
                }
                ArgAccess::GetVar => {
                    // New reference, or NULL with NameError for an unbound name.
                    let v = unsafe { ffi::PyFrame_GetVar(frame, slot.name.as_ptr()) };
                    if v.is_null() {
                        unsafe { py::PyErr_Clear() };
                    } else {
                        _owned = Some(unsafe { Bound::from_owned_ptr(py, v) });
                    }
                    v
                }
                // A missing name is recorded as None.
                ArgAccess::Locals => {
                    match locals.as_ref().map(|l| l.get_item(slot.name.bind(py))) {
                        Some(Ok(item)) => {
                            let v = item.as_ptr();
                            _owned = Some(item);
                            v
                        }
                        _ => std::ptr::null_mut(),
                    }
                }
            };
            let action = arg_action(slot);
            self.scoping.values.count(ValueKind::Arg, action);
            // One `arg_val` per branch: the common one stores the encoded scalar straight
            // into the record.
            if action == ValueAction::Allow && !v.is_null() {
                // SAFETY: `v` is live (held by the frame or `_owned`); GIL held.
                unsafe {
                    self.encoder
                        .encode_with(builder, py, v, ValueTo::Arg(slot.variable))
                };
            } else if action == ValueAction::Redact {
                let value = scope::redacted(builder);
                builder.arg(slot.variable, value);
            } else if action != ValueAction::Drop {
                builder.arg(slot.variable, Encoder::none());
            }
        }
    }

    /// The code index on top of the thread's stack when its key is `key` (the common case
    /// of a line or exception event).
    #[inline]
    pub(crate) fn top_code(&self, key: usize) -> Option<u32> {
        match self.cur_stack.last() {
            Some(top) if top.frame == key => Some(top.code),
            _ => None,
        }
    }

    /// A line of code `idx` is about to run.
    #[inline]
    pub(crate) fn line(&mut self, idx: u32, line: i64) {
        let info = &self.codes[idx as usize];
        if info.record {
            let path_id = info.path_id;
            self.counts.lines += 1;
            if let Some(builder) = self.builder.as_mut() {
                builder.step(path_id, line);
            }
        }
    }

    /// The frame known by `key` returns `value`, suspends yielding it, or (`None`) is
    /// unwound by an exception: popped from the thread's stack and, when recorded, a return
    /// in the trace.
    pub(crate) fn leave(&mut self, py: Python<'_>, key: usize, value: Option<*mut py::PyObject>) {
        let idx = match self.cur_stack.last() {
            Some(top) if top.frame == key => {
                let idx = top.code;
                self.cur_stack.pop();
                idx
            }
            _ => match self.cur_stack.iter().rposition(|e| e.frame == key) {
                // Frames above it vanished without a return event; drop them too.
                Some(pos) => {
                    let idx = self.cur_stack[pos].code;
                    self.cur_stack.truncate(pos);
                    idx
                }
                // A frame entered before recording started: its call was never recorded.
                None => return,
            },
        };
        let info = &self.codes[idx as usize];
        let (true, Some(builder)) = (info.record, self.builder.as_mut()) else {
            return;
        };
        let action = info.ret_action;
        self.counts.returns += 1;
        self.scoping.values.count(ValueKind::Return, action);
        // One `ret_val` per branch: the common one stores the encoded scalar straight into
        // the record.
        match value {
            // Borrowed from the callback's arguments.
            Some(v) if action == ValueAction::Allow && !v.is_null() => {
                // SAFETY: borrowed from the callback's arguments; GIL held.
                unsafe { self.encoder.encode_with(builder, py, v, ValueTo::Return) };
            }
            _ if action == ValueAction::Redact => {
                let value = scope::redacted(builder);
                builder.ret(value);
            }
            _ if action == ValueAction::Drop => {
                let value = scope::dropped(builder);
                builder.ret(value);
            }
            // Unwinding: the frame exits with an exception, not a value.
            _ => {
                let type_id = builder.type_id(TypeKind::Error, "<exception>");
                builder.ret(ValueRecord::Error {
                    msg: "<unwound by exception>".into(),
                    type_id,
                });
            }
        }
    }

    /// An exception is raised in (or propagates into) a frame of code `idx`; `exc` is the
    /// exception instance.
    pub(crate) fn exception(&mut self, py: Python<'_>, idx: u32, exc: *mut py::PyObject) {
        if !self.codes[idx as usize].record || exc.is_null() {
            return;
        }
        self.counts.exceptions += 1;
        let content = unsafe { describe_exception(py, exc) };
        if let Some(builder) = self.builder.as_mut() {
            builder.event(EventLogKind::Error, "exception", content);
        }
    }

    fn record_error(&mut self, message: String) {
        self.error_count += 1;
        if self.errors.len() < 20 {
            tracing::error!("recorder error: {message}");
            self.errors.push(message);
        }
    }
}

/// Slots of `Recorder::code_cache` (a power of two): 8 KiB.
const CODE_CACHE_SLOTS: usize = 512;

/// The `code_cache` slot of a code object's address (Fibonacci hashing: the product's top
/// bits depend on every address bit, so objects a fixed stride apart spread out).
#[inline]
fn code_cache_slot(addr: usize) -> usize {
    addr.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (usize::BITS - CODE_CACHE_SLOTS.trailing_zeros())
}

/// How a fresh frame's argument values are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ArgAccess {
    /// 3.11: straight from the frame's fast locals (layout verified at start).
    FastLocals,
    /// 3.12+: `PyFrame_GetVar` per parameter (no dict built; verified at start).
    GetVar,
    /// `PyFrame_GetLocals`: builds a dict (a proxy on 3.13) per call; the fallback when a
    /// self-check fails.
    Locals,
}

/// Which of the recorder's in-place reads the layout checks at session start allowed
/// (`trace_metadata.json`'s `summary.fast_paths`). A failed check falls back to the C API:
/// the trace is the same, only slower, so this is where such a fallback shows.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FastPaths {
    /// `settrace` (3.11) or `sys.monitoring` (3.12+).
    pub backend: &'static str,
    /// How call arguments are read: `fast-locals` (3.11, the frame's own slots),
    /// `frame-getvar` (3.12+, `PyFrame_GetVar`), or `frame-locals` (a dict per call, the
    /// fallback on either).
    pub arguments: &'static str,
    /// 3.11: the code object and line number read from the frame in place; `None` on 3.12+
    /// (the monitoring callbacks are handed both).
    pub frame_fields_in_place: Option<bool>,
    /// The thread id read from the thread state in place.
    pub thread_id_in_place: bool,
    /// 3.11: the current thread state read from the runtime in place; `None` on 3.12+ (read
    /// through `PyThreadState_Get`).
    pub current_thread_in_place: Option<bool>,
    /// One-digit `int` values read in place.
    pub small_int_in_place: bool,
}

/// The interpreter callbacks feeding the recorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// CPython 3.11: `PyEval_SetTrace` on every thread.
    SetTrace,
    /// CPython 3.12+: `sys.monitoring` (PEP 669).
    Monitoring,
}

impl Backend {
    pub fn for_interpreter(py: Python<'_>) -> Backend {
        if py.version_info() >= (3, 12) {
            Backend::Monitoring
        } else {
            Backend::SetTrace
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::SetTrace => "settrace",
            Backend::Monitoring => "sys.monitoring",
        }
    }
}

/// Whether the installed back end runs in evidence-only mode (3.11: the profile hook).
static EVIDENCE_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Starts delivering events to [`RECORDER`] with the interpreter's back end. Evidence-only
/// sessions (`evidence_only`, no trace) ask only for what first sights need: on 3.11 a
/// profile hook ([`profile`]) instead of the trace function, on 3.12+ `PY_START` alone
/// ([`monitoring`]).
pub fn install(py: Python<'_>, evidence_only: bool) -> PyResult<()> {
    EVIDENCE_ONLY.store(evidence_only, Ordering::Relaxed);
    match (Backend::for_interpreter(py), evidence_only) {
        (Backend::SetTrace, false) => settrace::install_all(py),
        (Backend::SetTrace, true) => profile::install_all(py),
        (Backend::Monitoring, _) => monitoring::install(py, evidence_only),
    }
}

/// Stops delivering events. Never fails: errors are cleared.
pub fn uninstall(py: Python<'_>) {
    match Backend::for_interpreter(py) {
        Backend::SetTrace if EVIDENCE_ONLY.load(Ordering::Relaxed) => profile::uninstall_all(py),
        Backend::SetTrace => settrace::uninstall_all(py),
        Backend::Monitoring => monitoring::uninstall(py),
    }
}

/// Threads that lost the recorder to the program's own `sys.settrace`, at stop (before
/// [`uninstall`]). Only the 3.11 back end can lose a thread that way: on 3.12+ the program's
/// trace function and `sys.monitoring` coexist.
pub fn threads_without_hook(py: Python<'_>) -> Vec<settrace::RecordingGap> {
    match Backend::for_interpreter(py) {
        // The profile hook's slot is not inspected (docs/shadow-mode.md, evidence-only).
        Backend::SetTrace if EVIDENCE_ONLY.load(Ordering::Relaxed) => Vec::new(),
        Backend::SetTrace => settrace::threads_without_hook(py),
        Backend::Monitoring => Vec::new(),
    }
}

/// `"TypeName: message"` for an exception instance, read from the exception's `args`
/// storage without calling its `__str__`.
unsafe fn describe_exception(py: Python<'_>, value: *mut py::PyObject) -> String {
    let tp = py::Py_TYPE(value);
    let name = std::ffi::CStr::from_ptr((*tp).tp_name)
        .to_string_lossy()
        .into_owned();
    if py::PyExceptionInstance_Check(value) == 0 {
        return name;
    }
    let args = (*(value as *mut py::PyBaseExceptionObject)).args;
    if !args.is_null() && py::PyTuple_Check(args) != 0 && py::PyTuple_Size(args) == 1 {
        let first = Bound::from_borrowed_ptr(py, py::PyTuple_GetItem(args, 0));
        if let Ok(s) = first.downcast::<PyString>() {
            return format!("{name}: {}", truncate(&s.to_string_lossy(), 512));
        }
    }
    name
}

fn arg_action(slot: &ArgSlot) -> ValueAction {
    slot.action
}

/// Checks, on a real frame, that [`ffi::fast_local`] reads what `PyFrame_GetLocals`
/// reports, for plain, keyword-only, `*args`, `**kwargs` and captured (cell) parameters.
/// Any mismatch or error (another CPython version, a changed layout) turns the fast path
/// off for the session.
fn fast_locals_layout_ok(py: Python<'_>) -> bool {
    let check = || -> PyResult<bool> {
        if py.version_info() < (3, 11) || py.version_info() >= (3, 12) {
            return Ok(false);
        }
        let src = c"import sys\ndef probe(a, b, *c, d, **e):\n    f = lambda: b\n    return sys._getframe()\n";
        let ns = pyo3::types::PyDict::new(py);
        py.run(src, Some(&ns), Some(&ns))?;
        let (a, b, d) = (
            py.eval(c"object()", None, None)?,
            py.eval(c"object()", None, None)?,
            py.eval(c"object()", None, None)?,
        );
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("d", &d)?;
        kwargs.set_item("zz", 1)?;
        let frame = ns
            .get_item("probe")?
            .unwrap()
            .call((&a, &b, 7), Some(&kwargs))?;
        let fp = frame.as_ptr() as *mut py::PyFrameObject;
        let read = |i: usize| unsafe {
            let v = ffi::fast_local(fp, i);
            if !v.is_null() && ffi::is_cell(v) {
                ffi::cell_contents(v)
            } else {
                v
            }
        };
        // `f_trace`, the field before `f_lineno` (which the line events read in place).
        let marker = py.eval(c"object()", None, None)?;
        frame.setattr("f_trace", &marker)?;
        let trace_ok = unsafe { ffi::frame_trace_311(fp) } == marker.as_ptr();
        frame.setattr("f_trace", py.None())?;
        if !trace_ok {
            return Ok(false);
        }
        // The instruction offset that tells a fresh frame from a resumed one, on this finished
        // frame and on a generator's frame that has not started (-1).
        let unstarted = py
            .eval(c"(lambda: (yield))()", None, None)?
            .getattr("gi_frame")?;
        for f in [frame.as_ptr(), unstarted.as_ptr()] {
            let f = f as *mut py::PyFrameObject;
            if unsafe { ffi::frame_lasti_311(f) != ffi::PyFrame_GetLasti(f) } {
                return Ok(false);
            }
        }
        let expected = frame.getattr("f_locals")?;
        let names = ["a", "b", "d", "c", "e"];
        for (i, name) in names.iter().enumerate() {
            let want = expected.get_item(name)?;
            if read(i) != want.as_ptr() {
                return Ok(false);
            }
        }
        Ok(true)
    };
    match check() {
        Ok(ok) => ok,
        Err(e) => {
            tracing::debug!("fast-locals self-check failed: {e}");
            false
        }
    }
}

/// Checks, on a real frame, that `PyFrame_GetVar` (3.12+) reads what `f_locals` reports
/// for plain, keyword-only, `*args`, `**kwargs` and captured (cell) parameters. Any
/// mismatch or error turns argument reading over to `PyFrame_GetLocals` for the session.
fn get_var_ok(py: Python<'_>) -> bool {
    let check = || -> PyResult<bool> {
        let src = c"import sys\ndef probe(a, b, *c, d, **e):\n    f = lambda: b\n    return sys._getframe()\n";
        let ns = pyo3::types::PyDict::new(py);
        py.run(src, Some(&ns), Some(&ns))?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("d", py.eval(c"object()", None, None)?)?;
        kwargs.set_item("zz", 1)?;
        let (a, b) = (
            py.eval(c"object()", None, None)?,
            py.eval(c"object()", None, None)?,
        );
        let frame = ns
            .get_item("probe")?
            .unwrap()
            .call((&a, &b, 7), Some(&kwargs))?;
        let fp = frame.as_ptr() as *mut py::PyFrameObject;
        let expected = frame.getattr("f_locals")?;
        for name in ["a", "b", "d", "c", "e"] {
            let want = expected.get_item(name)?;
            let key = PyString::new(py, name);
            let got = unsafe { ffi::PyFrame_GetVar(fp, key.as_ptr()) };
            if got.is_null() {
                return Err(PyErr::fetch(py));
            }
            let got = unsafe { Bound::from_owned_ptr(py, got) };
            if !got.is(&want) {
                return Ok(false);
            }
        }
        Ok(true)
    };
    match check() {
        Ok(ok) => ok,
        Err(e) => {
            tracing::debug!("PyFrame_GetVar self-check failed: {e}");
            false
        }
    }
}

/// Byte offset of the code's `RESUME 0` (function start), as `PyFrame_GetLasti` reports it
/// at a fresh frame's call event; -1 if absent.
fn resume_zero_offset(co_code: &[u8], resume: u8) -> c_int {
    co_code
        .chunks_exact(2)
        .position(|unit| unit[0] == resume && unit[1] == 0)
        .map(|i| (i * 2) as c_int)
        .unwrap_or(-1)
}

/// In a forked child: drop the inherited recorder without running its destructors (they
/// would join a writer thread that only exists in the parent, and touch the parent's
/// files), and remove the hook from this process.
fn forget_in_forked_child(py: Python<'_>) {
    if let Some(mut guard) = RECORDER.try_lock(py) {
        if let Some(rec) = guard.take() {
            std::mem::forget(rec);
        }
    }
    crate::session::forget_after_fork();
    uninstall(py);
    crate::process::PENDING.fetch_and(!crate::process::FORKED_CHILD, Ordering::SeqCst);
}

/// The recorder of the current session; `None` when not recording.
pub static RECORDER: cell::RecorderCell = cell::RecorderCell::new();

/// What a callback should do after [`run_hook`].
pub(crate) enum Hook<T> {
    /// The recorder handled the event.
    Done(T),
    /// Nothing was recorded (not recording, disabled, dropped, or the recorder just failed
    /// with `--on-recorder-error=disable`).
    Idle,
    /// The recorder failed with `--on-recorder-error=abort`: an exception is set for the
    /// program.
    Raise,
}

/// Callbacks between two looks at the size cap's flag (a power of two).
const SIZE_CAP_POLL: u64 = 256;

/// Runs one callback's work on the recorder with every back end's common handling: process
/// events (fork, SIGTERM), the try-lock, a disabled recorder, panics and errors (the
/// recorder stops, keeps what it has, and the program sees no exception unless
/// `--on-recorder-error=abort`).
///
/// # Safety
/// Called by a back end's callback, with the GIL held.
#[inline]
pub(crate) unsafe fn run_hook<T>(
    work: impl FnOnce(Python<'_>, &mut Recorder) -> Result<T, String>,
) -> Hook<T> {
    let py = Python::assume_gil_acquired();
    let pending = crate::process::PENDING.load(Ordering::Relaxed);
    if pending != 0 {
        if pending & crate::process::FORKED_CHILD != 0 {
            forget_in_forked_child(py);
            return Hook::Idle;
        }
        if pending & crate::process::SIGTERM_PENDING != 0 {
            crate::process::finish_and_die_by_sigterm(py);
            return Hook::Idle;
        }
    }
    let Some(mut guard) = RECORDER.try_lock(py) else {
        DROPPED_REENTRANT.fetch_add(1, Ordering::Relaxed);
        return Hook::Idle;
    };
    let Some(rec) = guard.as_mut() else {
        return Hook::Idle;
    };
    if rec.disabled {
        return Hook::Idle;
    }
    rec.counts.callbacks += 1;
    // The writer thread sets the cap's flag once, when it closes the events file there, and
    // drops every batch after it; so looking every SIZE_CAP_POLL callbacks is enough (what
    // is recorded meanwhile goes nowhere) and spares each callback a pointer chase.
    if rec.counts.callbacks.is_multiple_of(SIZE_CAP_POLL)
        && !rec.capped
        && rec.size_cap.is_reached()
        && !rec.reach_size_cap()
    {
        // Nothing goes on after the cut: the hooks go, as after a recorder error.
        drop(guard);
        uninstall(py);
        return Hook::Idle;
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| work(py, rec)));
    let failure = match outcome {
        Ok(Ok(value)) => return Hook::Done(value),
        Ok(Err(message)) => message,
        Err(panic) => format!(
            "panic in the trace hook: {}",
            panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default()
        ),
    };
    // Whatever the recorder did, it must not leave an exception for the program to see.
    if !py::PyErr_Occurred().is_null() {
        py::PyErr_Clear();
    }
    rec.record_error(failure.clone());
    rec.disabled = true;
    if let Some(builder) = rec.builder_mut() {
        builder.event(EventLogKind::Error, "recorder-error", failure.clone());
    }
    let on_error = rec.on_error;
    drop(guard);
    uninstall(py);
    match on_error {
        OnError::Disable => Hook::Idle,
        OnError::Abort => {
            let msg = format!("ct-record: recorder error (--on-recorder-error=abort): {failure}");
            match crate::recorder_error_type(py) {
                Ok(ty) => PyErr::from_type(ty, msg).restore(py),
                Err(e) => e.restore(py),
            }
            Hook::Raise
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_zero_offset_skips_resume_after_yield() {
        // MAKE_CELL 0, RESUME 0, ..., RESUME 1
        let code = [135u8, 0, 151, 0, 1, 0, 151, 1];
        assert_eq!(resume_zero_offset(&code, 151), 2);
        assert_eq!(resume_zero_offset(&[151, 1], 151), -1);
    }
}
