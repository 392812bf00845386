//! A recording session: start (open the run directory, install hooks) and stop (remove
//! hooks, flush, write `trace_metadata.json` and `trace_paths.json`).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use pyo3::exceptions::{PyOSError, PyRuntimeError};
use pyo3::prelude::*;
use serde::Serialize;

use crate::encode::Limits;
use crate::rundir::{self, RunMarker, RunState};
use std::sync::Arc;

use ct_shadow::{Budget, Metrics, MetricsServer, RunMeta, Sampler, ShadowConfig, ShadowSession};

use crate::filters::{FilterChain, FilterSummary, LoadOptions};
use crate::naming::{legacy_engine, Engine, GlobalsNamer, ModuleNamer, PySysModules};
use crate::policy::{process_env, CliOverrides, Layer, Policy, PolicyError, PythonApiValues};
use crate::tracer::scope::{Scoping, ValueCounters};
use crate::tracer::shadow::{shadow_engine, ShadowSide};
use crate::tracer::{
    EventCounts, Naming, NamingCounts, OnError, Recorder, RecorderOptions, DROPPED_REENTRANT,
    RECORDER,
};
use crate::writer::{EventSink, TraceBuilder, TraceFormat};

/// The events file format of a recording that names none: `ct-record` without `--format`
/// or `CODETRACER_TRACE_FORMAT`, and `ct_recorder.start()` without `format=`. The one place
/// that decides it. Compact (`trace.ctc`) because it is the cheapest to write by far (on
/// call-heavy code about 1.45x the no-op floor's instructions per event, against 2.4x for
/// binary and 1.7x for JSON) and the smallest; `python -m ct_recorder.convert` turns it into CodeTracer
/// binary or JSON, and both stay one option away (docs/performance.md).
pub const DEFAULT_FORMAT: TraceFormat = TraceFormat::Compact;

pub struct SessionConfig {
    pub trace_dir: PathBuf,
    pub format: TraceFormat,
    /// What was run: the script path as given, or `-m MODULE`.
    pub program: String,
    pub args: Vec<String>,
    /// Code under this directory (the recorder's own Python package) is never recorded.
    pub own_dir: Option<String>,
    pub on_error: OnError,
    pub limits: Limits,
    /// `--max-trace-size`: the events file's cap in bytes (`None`: no cap).
    pub max_trace_size: Option<u64>,
    /// Do not record the code running on the calling thread's stack (the launcher's).
    pub skip_current_stack: bool,
    /// Where the trace filter chain comes from (spec F1).
    pub filters: LoadOptions,
    /// The effective policy (engine, shadow mode) with its provenance.
    pub policy: Policy,
    pub shadow: ShadowOptions,
}

/// Shadow-mode and metrics options (see docs/shadow-mode.md, docs/metrics.md).
#[derive(Default, Debug, Clone)]
pub struct ShadowOptions {
    /// `--shadow-sample`: fraction of files compared (`0.1` or `10%`).
    pub sample: Option<String>,
    /// `--shadow-budget`: stop comparing when the shadow engine has used this fraction of
    /// the run's time.
    pub budget: Option<String>,
    /// `--metrics-addr HOST:PORT` (port 0 picks one).
    pub metrics_addr: Option<String>,
    /// Fail before the program starts when the metrics address cannot be served
    /// (`--metrics-on-error fail`, the default) rather than carry on without `/metrics`.
    pub metrics_required: bool,
    /// `--metrics-linger SECONDS`: keep serving after the program ends.
    pub metrics_linger: std::time::Duration,
    /// `--metrics-push URL`: push the final metrics to a Pushgateway.
    pub metrics_push: Option<String>,
    /// `--quiet`: no end-of-run summary on stderr.
    pub quiet: bool,
    /// ct-record's argv, for the run metadata.
    pub command: Vec<String>,
}

struct MetricsRuntime {
    metrics: Arc<Metrics>,
    server: Option<MetricsServer>,
    shadow_on: bool,
    run_id: String,
    opts: ShadowOptions,
}

/// The naming engine for `engine`. A build without the legacy engine has none to give;
/// asking for it is an error the caller reports before anything runs.
pub fn make_namer(py: Python<'_>, engine: Engine) -> Result<Box<dyn ModuleNamer + Send>, String> {
    match engine {
        Engine::Globals => Ok(Box::new(GlobalsNamer::new())),
        Engine::Legacy => match legacy_engine() {
            Some(legacy) => Ok(legacy.namer(py)),
            None => Err(format!("this build has {}", no_legacy_engine())),
        },
    }
}

/// Why a build has no legacy engine, for error messages: deleted by the rollout, or built
/// without the `legacy-resolver` feature.
pub fn no_legacy_engine() -> String {
    if crate::policy::rollout::PHASE == crate::policy::Phase::LegacyDeleted {
        "no legacy engine: it was deleted (rollout phase legacy-deleted, see rollout.toml); \
         module names come from `__name__`"
            .to_owned()
    } else {
        "no legacy engine (built without the `legacy-resolver` feature)".to_owned()
    }
}

/// `ct_recorder.configure_policy(...)`: the highest layer, kept for the process.
static PYTHON_API: Mutex<PythonApiValues> = Mutex::new(PythonApiValues {
    module_name_from_globals: None,
    shadow_compare: None,
    evidence_only: None,
});
/// The policy `ct-record` computed before handing over to the launcher.
static PENDING_POLICY: Mutex<Option<Policy>> = Mutex::new(None);

/// Keeps the values given (a `None` leaves the value set by an earlier call).
pub fn configure_python_api(values: PythonApiValues) {
    if let Ok(mut g) = PYTHON_API.lock() {
        let keep = |new: Option<bool>, old: Option<bool>| new.or(old);
        *g = PythonApiValues {
            module_name_from_globals: keep(
                values.module_name_from_globals,
                g.module_name_from_globals,
            ),
            shadow_compare: keep(values.shadow_compare, g.shadow_compare),
            evidence_only: keep(values.evidence_only, g.evidence_only),
        };
    }
}

/// The effective policy: built-in < project config (found upward from `program_dir`) <
/// environment < command line < Python API.
pub fn build_policy(program_dir: &Path, cli: Option<&CliOverrides>) -> Result<Policy, PolicyError> {
    let mut builder = Policy::builder()
        .project_config(program_dir)?
        .env(process_env)?;
    if let Some(cli) = cli {
        builder = builder.cli(cli);
    }
    let mut policy = builder.build();
    let api = PYTHON_API.lock().map(|g| *g).unwrap_or_default();
    policy.apply_python_api_values(&api);
    Ok(policy)
}

pub fn set_pending_policy(policy: Policy) {
    if let Ok(mut g) = PENDING_POLICY.lock() {
        *g = Some(policy);
    }
}

pub fn take_pending_policy() -> Option<Policy> {
    PENDING_POLICY.lock().ok().and_then(|mut g| g.take())
}

/// The engine the policy selects, and the layer that chose it. A build without the legacy
/// engine uses the globals engine when the legacy one only comes from the built-in default,
/// and refuses an explicit request for it.
pub fn primary_engine(policy: &Policy) -> Result<(Engine, String), String> {
    let setting = &policy.module_name_from_globals;
    let layer = setting.layer.as_str().to_owned();
    if setting.value {
        return Ok((Engine::Globals, layer));
    }
    if legacy_engine().is_some() {
        return Ok((Engine::Legacy, layer));
    }
    if setting.layer == Layer::BuiltIn {
        Ok((
            Engine::Globals,
            format!("{layer} (legacy engine not built)"),
        ))
    } else {
        Err(format!(
            "the legacy engine was asked for ({}) but this build has {}",
            setting.source.as_deref().unwrap_or(setting.layer.as_str()),
            no_legacy_engine()
        ))
    }
}

/// The engines a recording with `policy` uses in this build: the primary (and the layer
/// that chose it) and the shadow engine, if shadow compare is on. `Err`: the policy asks for
/// an engine this build does not have (the message a recording would stop with).
pub fn engines_in_force(policy: &Policy) -> Result<(Engine, String, Option<Engine>), String> {
    let (primary, layer) = primary_engine(policy)?;
    if !policy.shadow_compare.value {
        return Ok((primary, layer, None));
    }
    let shadow = match primary {
        Engine::Globals => Engine::Legacy,
        Engine::Legacy => Engine::Globals,
    };
    if shadow == Engine::Legacy && legacy_engine().is_none() {
        return Err(format!(
            "--shadow-compare: this build has {}",
            no_legacy_engine()
        ));
    }
    Ok((primary, layer, Some(shadow)))
}

struct SessionInfo {
    trace_dir: PathBuf,
    format: TraceFormat,
    program: String,
    args: Vec<String>,
    workdir: PathBuf,
    started: Instant,
    started_unix: f64,
    engine: Engine,
    engine_layer: String,
    /// No trace (`--evidence-only`).
    evidence_only: bool,
    policy_json: serde_json::Value,
    filter_summary: FilterSummary,
    metrics: Option<MetricsRuntime>,
    /// `run.json` as written at start; completed at stop.
    marker: RunMarker,
}

static SESSION: Mutex<Option<SessionInfo>> = Mutex::new(None);

/// What `stop` reports back (also written into `trace_metadata.json`).
#[derive(Serialize, Clone, Debug)]
pub struct SessionSummary {
    // Text (lossy) so that a non-UTF-8 directory never stops the summary from serialising.
    pub trace_dir: String,
    /// `None` for an evidence-only session (no trace).
    pub events_file: Option<String>,
    pub events: u64,
    pub counts: EventCounts,
    pub recorder_errors: Vec<String>,
    pub recorder_error_count: u64,
    pub dropped_reentrant_events: u64,
    pub duration_seconds: f64,
    pub naming: NamingCounts,
    pub filters: FilterStats,
    /// Stretches of threads not recorded because `sys.settrace` replaced the hook.
    pub recording_gaps: Vec<crate::tracer::settrace::RecordingGap>,
    /// `--max-trace-size`, and where the trace stops when it was reached.
    pub trace_size_cap: crate::tracer::SizeCapReport,
    /// Which in-place reads the layout checks at start allowed (a failed check is slower,
    /// not different).
    pub fast_paths: crate::tracer::FastPaths,
}

#[derive(Serialize, Clone, Debug)]
pub struct FilterStats {
    /// Code objects the filters decided not to record.
    pub skipped_code_objects: u64,
    pub values: ValueCounters,
}

#[derive(Serialize)]
struct NamingInfo<'a> {
    engine: &'static str,
    layer: &'a str,
}

#[derive(Serialize)]
struct Metadata<'a> {
    // The three fields runtime_tracing's `TraceMetadata` reads; the rest is ours.
    workdir: String,
    program: &'a str,
    args: &'a [String],
    recorder: RecorderInfo,
    started_unix: f64,
    /// `trace`, or `evidence-only` (no events file, no `trace_paths.json`).
    recording: ct_shadow::Recording,
    /// The events file's format; `None` without a trace.
    format: Option<&'static str>,
    module_naming: NamingInfo<'a>,
    policy: &'a serde_json::Value,
    filters: &'a FilterSummary,
    summary: &'a SessionSummary,
}

#[derive(Serialize)]
struct RecorderInfo {
    name: &'static str,
    version: &'static str,
    python: String,
}

/// In a forked child: forget the parent's session (its metrics server threads and shadow
/// files belong to the parent).
pub fn forget_after_fork() {
    if let Ok(mut g) = SESSION.try_lock() {
        if let Some(info) = g.take() {
            std::mem::forget(info);
        }
    }
}

pub fn is_recording() -> bool {
    SESSION.lock().map(|s| s.is_some()).unwrap_or(false)
}

pub fn start(py: Python<'_>, cfg: SessionConfig) -> PyResult<()> {
    let mut session = SESSION
        .lock()
        .map_err(|_| PyRuntimeError::new_err("recorder state poisoned"))?;
    if session.is_some() {
        return Err(PyRuntimeError::new_err(
            "ct_recorder: a recording is already running; stop it first",
        ));
    }
    // Settings that do not fit together stop everything before anything is written.
    cfg.policy.check().map_err(crate::ConfigError::new_err)?;
    let evidence_only = cfg.policy.evidence_only.value;
    // Filters first: a bad filter file stops everything before anything is written.
    let chain =
        FilterChain::load(&cfg.filters).map_err(|e| crate::ConfigError::new_err(e.to_string()))?;
    for s in chain.sources() {
        tracing::info!(
            source = s.name(),
            path = %s.path().map(|p| p.display().to_string()).unwrap_or_else(|| "-".into()),
            rules = s.rule_count(),
            "filter loaded"
        );
    }
    let filter_summary = chain.summary();
    let (engine, engine_layer) =
        primary_engine(&cfg.policy).map_err(crate::ConfigError::new_err)?;
    tracing::info!(
        engine = engine.as_str(),
        chosen_by = %engine_layer,
        source = cfg.policy.module_name_from_globals.source.as_deref().unwrap_or("-"),
        shadow_compare = cfg.policy.shadow_compare.value,
        "primary naming engine chosen"
    );
    let shadow_on = cfg.policy.shadow_compare.value;
    let shadow_namer = if shadow_on {
        let other = match engine {
            Engine::Globals => Engine::Legacy,
            Engine::Legacy => Engine::Globals,
        };
        Some(
            make_namer(py, other)
                .map_err(|e| crate::ConfigError::new_err(format!("--shadow-compare: {e}")))?,
        )
    } else {
        None
    };
    let bad =
        |what: &str, e: &dyn std::fmt::Display| crate::ConfigError::new_err(format!("{what}: {e}"));
    let sampler = match &cfg.shadow.sample {
        Some(s) => Sampler::parse(s).map_err(|e| bad("--shadow-sample", &e))?,
        None => Sampler::default(),
    };
    let budget = match &cfg.shadow.budget {
        Some(b) => Some(Budget::parse(b).map_err(|e| bad("--shadow-budget", &e))?),
        None => None,
    };
    if shadow_on {
        tracing::info!(
            sample = sampler.rate(),
            budget = ?budget.as_ref().map(Budget::fraction),
            "shadow comparison on: sampling files at this rate, within this budget"
        );
    }
    // A push URL that can never work (https, credentials, garbage) is refused now, not
    // after the program has run.
    if let Some(url) = &cfg.shadow.metrics_push {
        // Without a scheme (`notaurl`, `127.0.0.1:1`) the URL can only fail at the push.
        if !url.contains("://") {
            return Err(crate::ConfigError::new_err(format!(
                "--metrics-push {url:?}: not a URL (no scheme); give the Pushgateway as \
                 http://HOST:PORT"
            )));
        }
        ct_shadow::push::Gateway::parse(url)
            .map_err(|e| crate::ConfigError::new_err(e.to_string()))?;
    }
    let started_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    // One id for the run: run.json, the shadow summary and the metrics all carry it.
    let run_id = format!("{}-{}", started_at.as_secs(), std::process::id());
    let metrics_wanted =
        shadow_on || cfg.shadow.metrics_addr.is_some() || cfg.shadow.metrics_push.is_some();
    let mut metrics_rt = None;
    if metrics_wanted {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let metrics = Arc::new(Metrics::new(&ct_shadow::RecorderInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            primary: shadow_engine(engine),
            shadow: shadow_namer.as_ref().map(|n| shadow_engine(n.engine())),
        }));
        // The run id, as two gauges, before anything can scrape (docs/metrics.md).
        metrics.set_run_identity(started.as_secs(), std::process::id());
        // The server binds before anything is written: a busy port or a bad address is
        // reported before the program starts (or, with --metrics-on-error continue,
        // the run carries on without /metrics).
        let server = match &cfg.shadow.metrics_addr {
            Some(addr) => {
                match MetricsServer::start(&with_default_host(addr), metrics.registry().clone()) {
                    Ok(server) => {
                        say(&format!(
                            "ct-record: serving metrics on http://{}/metrics",
                            server.local_addr()
                        ));
                        tracing::info!(addr = %server.local_addr(), "metrics server bound");
                        if let Some(warning) = exposure_warning(addr, server.local_addr()) {
                            say(&warning);
                        }
                        Some(server)
                    }
                    Err(e) if cfg.shadow.metrics_required => {
                        return Err(bad("--metrics-addr", &e));
                    }
                    Err(e) => {
                        say(&format!(
                            "ct-record: warning: --metrics-addr: {e}; carrying on without /metrics"
                        ));
                        None
                    }
                }
            }
            None => None,
        };
        metrics_rt = Some(MetricsRuntime {
            metrics,
            server,
            shadow_on,
            run_id: run_id.clone(),
            opts: cfg.shadow.clone(),
        });
    }
    // Absolute now: the program may chdir before the trace is finished. Messages show the
    // directory as the user gave it.
    let mut cfg = cfg;
    let given_dir = cfg.trace_dir.clone();
    if cfg.trace_dir.is_relative() {
        cfg.trace_dir = std::env::current_dir()?.join(&cfg.trace_dir);
    }
    let existed = cfg.trace_dir.exists();
    std::fs::create_dir_all(&cfg.trace_dir).map_err(|e| {
        PyOSError::new_err(format!(
            "cannot create the trace directory '{}': {e}",
            given_dir.display()
        ))
    })?;
    let cannot_write = |e: &dyn std::fmt::Display| {
        PyOSError::new_err(format!(
            "cannot write the trace directory '{}': {e}",
            given_dir.display()
        ))
    };
    let undo = |dir: &Path| {
        if !existed {
            let _ = std::fs::remove_file(RunMarker::path(dir));
            let _ = std::fs::remove_dir(dir);
        }
    };
    // The directory now belongs to this run: first the marker (so that from here on the
    // directory says "running"), then the previous run's artifacts go (docs/recording.md).
    let stale = match rundir::previous_run_files(&cfg.trace_dir) {
        Ok(stale) => stale,
        Err(e) => {
            undo(&cfg.trace_dir);
            return Err(cannot_write(&e));
        }
    };
    let marker = RunMarker {
        schema: rundir::MARKER_SCHEMA,
        run_id,
        state: RunState::Running,
        pid: std::process::id(),
        recorder_version: env!("CARGO_PKG_VERSION").to_owned(),
        program: cfg.program.clone(),
        args: cfg.args.clone(),
        started_unix: started_at.as_secs_f64(),
        events_file: (!evidence_only).then(|| cfg.format.events_file_name().to_owned()),
        shadow_compare: shadow_on,
        evidence_only,
        finished_unix: None,
        exit_code: None,
        stop_errors: Vec::new(),
    };
    if let Err(e) = marker.write(&cfg.trace_dir) {
        undo(&cfg.trace_dir);
        return Err(cannot_write(&format!("{}: {e}", rundir::MARKER_FILE)));
    }
    if let Err(e) = rundir::remove_files(&cfg.trace_dir, &stale) {
        return Err(cannot_write(&e));
    }
    let program_path = PathBuf::from(&cfg.program);
    // Evidence-only: the writer is not created (no events file, no writer thread).
    let builder = if evidence_only {
        None
    } else {
        match EventSink::create(&cfg.trace_dir, cfg.format, &cfg.program, &cfg.args) {
            Ok(sink) => {
                sink.set_max_bytes(cfg.max_trace_size);
                Some(TraceBuilder::new(sink, &program_path))
            }
            Err(e) => {
                undo(&cfg.trace_dir);
                return Err(cannot_write(&e));
            }
        }
    };
    // The legacy engine snapshots sys.path and the cwd now: after the launcher has set
    // sys.path[0] the way python would.
    let primary = make_namer(py, engine).map_err(crate::ConfigError::new_err)?;
    #[allow(unused_mut)]
    let mut scoping = Scoping::new(chain);
    let shadow = match (shadow_namer, &metrics_rt) {
        (Some(namer), Some(rt)) => {
            let config = ShadowConfig {
                run_dir: cfg.trace_dir.clone(),
                sampler,
                budget,
            };
            // The shadow is a guest: if its artifacts cannot be written, the recording
            // carries on without it.
            match ShadowSession::start(config, rt.metrics.clone()) {
                Ok(session) => {
                    let roots = session_roots(py);
                    let digest = session.register_roots(&roots);
                    Some(ShadowSide::new(namer, session, digest))
                }
                Err(e) => {
                    say(&format!("ct-record: warning: shadow mode off for this run: cannot write the shadow artifacts: {e}"));
                    None
                }
            }
        }
        _ => None,
    };
    if engine == Engine::Legacy || shadow_on {
        // The filter engine's own resolver, as in the reference (spec L7).
        scoping.legacy_filter = legacy_engine().map(|e| e.filter_namer(py));
    }
    let mut recorder = Recorder::new(
        py,
        builder,
        RecorderOptions {
            naming: Naming {
                primary,
                modules: PySysModules::new(),
            },
            scoping,
            shadow,
            metrics: metrics_rt.as_ref().map(|m| m.metrics.clone()),
            own_dir: cfg.own_dir.clone(),
            on_error: cfg.on_error,
            limits: cfg.limits,
        },
    )?;
    if cfg.skip_current_stack {
        recorder.skip_current_stack(py);
    }
    DROPPED_REENTRANT.store(0, Ordering::Relaxed);
    *RECORDER.lock_waiting(py) = Some(recorder);
    *session = Some(SessionInfo {
        trace_dir: cfg.trace_dir,
        format: cfg.format,
        program: cfg.program,
        args: cfg.args,
        workdir: std::env::current_dir().unwrap_or_default(),
        started: Instant::now(),
        started_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
        engine,
        engine_layer,
        evidence_only,
        policy_json: cfg.policy.to_json(),
        filter_summary,
        metrics: metrics_rt,
        marker,
    });
    drop(session);
    if let Err(e) = crate::tracer::install(py, evidence_only) {
        let _ = stop(py, None);
        return Err(e);
    }
    tracing::info!(engine = engine.as_str(), "recording session started");
    Ok(())
}

/// Hands buffered events to the writer thread (used before the process may die).
pub fn flush(py: Python<'_>) {
    if let Some(mut guard) = RECORDER.try_lock(py) {
        if let Some(rec) = guard.as_mut() {
            if let Some(builder) = rec.builder_mut() {
                builder.flush();
            }
        }
    }
}

/// Ends the recording. Every step runs even when an earlier one fails, in this order: the
/// events file, `trace_paths.json`, `trace_metadata.json`, the shadow artifacts (or
/// `metrics.prom`), `run.json` marked finished (listing the steps that failed), the push,
/// then the human summary on stderr and the metrics linger. Nothing here panics or stops
/// early on a broken stderr. Returns an error naming every failed step, after all have run.
pub fn stop(py: Python<'_>, exit_code: Option<i32>) -> PyResult<Option<SessionSummary>> {
    let _span = tracing::info_span!("session_stop", exit_code = ?exit_code).entered();
    // Before the hooks go: which threads lost theirs to sys.settrace.
    let lost = if is_recording() {
        crate::tracer::threads_without_hook(py)
    } else {
        Vec::new()
    };
    crate::tracer::uninstall(py);
    let Some(mut info) = SESSION.lock().ok().and_then(|mut s| s.take()) else {
        return Ok(None);
    };
    let recorder = RECORDER.lock_waiting(py).take();
    let Some(mut recorder) = recorder else {
        return Ok(None);
    };
    let mut failures: Vec<String> = Vec::new();
    recorder.sync_metrics();
    let legacy_resolvers = recorder.legacy_resolver_reports();
    let shadow_side = recorder.shadow.take();
    let counts = recorder.counts();
    let errors = std::mem::take(&mut recorder.errors);
    let error_count = recorder.error_count;
    let mut recording_gaps = recorder.take_gaps();
    // Only threads that were recorded can have lost anything, and only from a recorder that
    // did not remove its hooks itself (after an error, or at the size cap).
    let lost = if recorder.disabled { Vec::new() } else { lost };
    recording_gaps.extend(recorder.threads_ended_without_hook(py));
    recording_gaps.extend(
        lost.into_iter()
            .filter(|g| recorder.has_seen_thread(g.thread))
            .map(|mut g| {
                g.at = recorder
                    .innermost_position(py, g.thread)
                    .unwrap_or_else(|| "?".into());
                g
            }),
    );
    let mut naming = std::mem::take(&mut recorder.naming_counts);
    naming.legacy_resolvers = legacy_resolvers;
    let filters = FilterStats {
        skipped_code_objects: recorder.scoping.skipped_by_filter,
        values: std::mem::take(&mut recorder.scoping.values),
    };
    // Evidence-only sessions have no trace: no events file, no trace_paths.json.
    let trace = recorder.builder_mut().map(|builder| {
        // Paths are recorded from lossy text, so they serialise; never panic on the way out.
        let paths = serde_json::to_vec(builder.path_list()).unwrap_or_else(|_| b"[]".to_vec());
        let events_file = builder.events_path().to_path_buf();
        (paths, events_file, builder.finish())
    });
    // After the events file is closed: its last batch may be what reached the cap.
    recorder.warn_size_cap();
    let trace_size_cap = recorder.size_cap_report();
    let fast_paths = recorder.fast_paths();
    // Code objects are released here, with the GIL held.
    drop(recorder);
    let (paths, events_file, events) = match trace {
        Some((paths, events_file, finished)) => {
            let events = match finished {
                Ok(n) => n,
                Err(e) => {
                    failures.push(format!("writing {}: {e}", events_file.display()));
                    0
                }
            };
            (Some(paths), Some(events_file), events)
        }
        None => (None, None, 0),
    };
    let summary = SessionSummary {
        trace_dir: info.trace_dir.to_string_lossy().into_owned(),
        events_file: events_file.map(|f| f.to_string_lossy().into_owned()),
        events,
        counts,
        recorder_errors: errors,
        recorder_error_count: error_count,
        dropped_reentrant_events: DROPPED_REENTRANT.load(Ordering::Relaxed),
        duration_seconds: info.started.elapsed().as_secs_f64(),
        naming,
        filters,
        recording_gaps,
        trace_size_cap,
        fast_paths,
    };
    if !summary.recording_gaps.is_empty() {
        let threads: std::collections::BTreeSet<u64> =
            summary.recording_gaps.iter().map(|g| g.thread).collect();
        say(&format!(
            "ct-record: warning: sys.settrace replaced the recorder's trace function on {} \
             thread(s); {} stretch(es) were not recorded (first at {}); see recording_gaps in \
             trace_metadata.json",
            threads.len(),
            summary.recording_gaps.len(),
            summary.recording_gaps[0].at
        ));
    }
    let write = |name: &str, bytes: &[u8], failures: &mut Vec<String>| {
        let path = info.trace_dir.join(name);
        let result = ct_shadow::artifacts::write_atomic(&path, |w| w.write_all(bytes));
        if let Err(e) = result {
            failures.push(format!("writing {}: {e}", path.display()));
        }
    };
    if let Some(paths) = &paths {
        write("trace_paths.json", paths, &mut failures);
    }
    let python = py
        .import("sys")
        .and_then(|s| s.getattr("version"))
        .and_then(|v| v.extract::<String>())
        .unwrap_or_default();
    let metadata = Metadata {
        workdir: info.workdir.to_string_lossy().into_owned(),
        program: &info.program,
        args: &info.args,
        recorder: RecorderInfo {
            name: "ct-recorder",
            version: env!("CARGO_PKG_VERSION"),
            python,
        },
        started_unix: info.started_unix,
        recording: if info.evidence_only {
            ct_shadow::Recording::EvidenceOnly
        } else {
            ct_shadow::Recording::Trace
        },
        format: (!info.evidence_only).then(|| info.format.as_str()),
        module_naming: NamingInfo {
            engine: info.engine.as_str(),
            layer: &info.engine_layer,
        },
        policy: &info.policy_json,
        filters: &info.filter_summary,
        summary: &summary,
    };
    match serde_json::to_vec_pretty(&metadata) {
        Ok(bytes) => write("trace_metadata.json", &bytes, &mut failures),
        Err(e) => failures.push(format!("trace_metadata.json: {e}")),
    }
    let metrics = info.metrics.take();
    let human = metrics.as_ref().and_then(|rt| {
        let cut = &summary.trace_size_cap;
        let trace_cut = match (cut.limit_bytes, cut.events_written, cut.bytes_written) {
            (Some(limit_bytes), Some(events), Some(bytes)) => Some(ct_shadow::TraceCut {
                limit_bytes,
                events,
                bytes,
            }),
            _ => None,
        };
        let trace = summary
            .events_file
            .as_deref()
            .map(|events_file| ct_shadow::TraceWritten {
                events_file,
                events: summary.events,
            });
        write_metrics_artifacts(
            py,
            &info,
            rt,
            shadow_side,
            exit_code,
            (trace_cut, trace),
            &mut failures,
        )
    });
    // Last of the durable artifacts: the marker says the directory is complete.
    let mut marker = info.marker.clone();
    marker.state = RunState::Finished;
    marker.finished_unix = Some(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
    );
    marker.exit_code = exit_code;
    marker.stop_errors = failures.clone();
    if let Err(e) = marker.write(&info.trace_dir) {
        failures.push(format!(
            "writing {}: {e}",
            RunMarker::path(&info.trace_dir).display()
        ));
    }
    if let Some(rt) = metrics {
        push_metrics(&rt);
        if let Some(text) = human {
            say(&text);
        }
        linger(py, rt);
    }
    tracing::info!(
        trace_dir = %info.trace_dir.display(),
        events = summary.events,
        failed_steps = failures.len(),
        "recording session stopped"
    );
    if failures.is_empty() {
        Ok(Some(summary))
    } else {
        Err(PyOSError::new_err(failures.join("; ")))
    }
}

/// Writes `text` (plus a newline unless it ends with one) to stderr. A stderr that cannot be
/// written (closed pipe, full disk) never stops the caller: the text goes to the recorder's
/// log instead, which is the `--log-file` when one is set.
pub fn say(text: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let newline = if text.ends_with('\n') { "" } else { "\n" };
    let result = write!(err, "{text}{newline}").and_then(|()| err.flush());
    if let Err(e) = result {
        tracing::error!("could not write to stderr ({e}); the message was:\n{text}");
    }
}

/// The warning for a metrics server bound to `local` (given as `addr`) that other machines
/// may reach: any address but a loopback one (`0.0.0.0` and `::` included).
fn exposure_warning(addr: &str, local: std::net::SocketAddr) -> Option<String> {
    (!local.ip().is_loopback()).then(|| {
        format!(
            "ct-record: warning: --metrics-addr {addr}: /metrics is exposed to the network \
             (not a loopback address); anyone who can reach it can read the run's metrics"
        )
    })
}

/// `HOST:PORT`, with `127.0.0.1` when only `:PORT` or `PORT` is given.
fn with_default_host(addr: &str) -> String {
    if let Some(port) = addr.strip_prefix(':') {
        format!("127.0.0.1:{port}")
    } else if addr.chars().all(|c| c.is_ascii_digit()) {
        format!("127.0.0.1:{addr}")
    } else {
        addr.to_owned()
    }
}

/// The session's `sys.path` roots as the legacy resolver sees them (L2), for the shadow
/// artifacts.
fn session_roots(py: Python<'_>) -> Vec<String> {
    legacy_engine()
        .map(|e| e.session_roots(py))
        .unwrap_or_default()
}

/// How the program was started, from ct-record's argv: the recorder's part ends with
/// `SCRIPT` or `-m MODULE` (`cli::split_argv`). No argv: a program that called
/// `ct_recorder.start()` itself.
fn entry_of(command: &[String]) -> ct_shadow::Entry {
    use clap::CommandFactory;
    if command.is_empty() {
        return ct_shadow::Entry::api();
    }
    let argv: Vec<std::ffi::OsString> = command.iter().map(Into::into).collect();
    let (ours, _) = crate::cli::split_argv(&crate::cli::RecordArgs::command(), &argv);
    let ours: Vec<String> = ours
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match ours.as_slice() {
        [.., m, module] if m == "-m" => ct_shadow::Entry::new(true, module),
        [.., m] if m.starts_with("-m") && m.len() > 2 => ct_shadow::Entry::new(true, &m[2..]),
        [_, .., script] => ct_shadow::Entry::new(false, script),
        _ => ct_shadow::Entry::api(),
    }
}

/// End of run for metrics and shadow mode, the durable part: the shadow artifacts
/// (`summary.json`, `metrics.prom`), or `metrics.prom` alone without shadow mode. Returns the
/// human summary to print once everything durable is written. Failures are collected.
fn write_metrics_artifacts(
    py: Python<'_>,
    info: &SessionInfo,
    rt: &MetricsRuntime,
    shadow: Option<ShadowSide>,
    exit_code: Option<i32>,
    (trace_cut, trace): (
        Option<ct_shadow::TraceCut>,
        Option<ct_shadow::TraceWritten<'_>>,
    ),
    failures: &mut Vec<String>,
) -> Option<String> {
    let python_version = py
        .import("sys")
        .and_then(|s| s.getattr("version"))
        .and_then(|v| v.extract::<String>())
        .ok();
    let meta = RunMeta {
        run_id: rt.run_id.clone(),
        command: rt.opts.command.clone(),
        started_unix_seconds: info.started_unix,
        python_version,
        exit_code,
        entry: Some(entry_of(&rt.opts.command)),
        recording: if info.evidence_only {
            ct_shadow::Recording::EvidenceOnly
        } else {
            ct_shadow::Recording::Trace
        },
        trace_cut,
        filter_chain: info
            .filter_summary
            .sources
            .iter()
            .map(|s| ct_shadow::FilterSourceRef {
                source: s.path.clone(),
                builtin: s.origin == crate::filters::SourceOrigin::Builtin,
                sha256: s.sha256.clone(),
            })
            .collect(),
    };
    // The counts are final: the artifacts, the push and any later scrape say so.
    rt.metrics.set_finished();
    match (&shadow, rt.shadow_on) {
        (Some(side), _) => match side.session.finish(&meta) {
            Ok(summary) => {
                (!rt.opts.quiet).then(|| ct_shadow::render_summary_with_trace(&summary, trace))
            }
            Err(e) => {
                failures.push(format!("writing the shadow artifacts: {e}"));
                None
            }
        },
        _ => {
            if let Err(e) = ct_shadow::write_metrics_file(&info.trace_dir, &rt.metrics) {
                failures.push(format!("writing metrics.prom: {e}"));
            }
            None
        }
    }
}

/// `--metrics-push`: a failed push is a warning (the run's artifacts are already written).
fn push_metrics(rt: &MetricsRuntime) {
    if let Some(url) = &rt.opts.metrics_push {
        match ct_shadow::push::push(url, "ct-record", &rt.run_id, rt.metrics.registry()) {
            Ok(()) => tracing::info!(
                "pushed metrics to {url} (job ct-record, run_id {})",
                rt.run_id
            ),
            Err(e) => say(&format!("ct-record: warning: --metrics-push {url}: {e}")),
        }
    }
}

/// `--metrics-linger`: keep serving for a last scrape, then stop the server.
fn linger(py: Python<'_>, rt: MetricsRuntime) {
    if let Some(server) = rt.server {
        if !rt.opts.metrics_linger.is_zero() {
            tracing::info!(
                "serving final metrics at http://{}/metrics for {:?}",
                server.local_addr(),
                rt.opts.metrics_linger
            );
            // Scrapes never need the GIL; let other threads run while we wait.
            py.allow_threads(|| std::thread::sleep(rt.opts.metrics_linger));
        }
        server.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_quiet() {
        for quiet in ["127.0.0.1:9464", "127.1.2.3:1", "[::1]:9464"] {
            assert_eq!(
                exposure_warning(quiet, quiet.parse().unwrap()),
                None,
                "{quiet}"
            );
        }
        for exposed in [
            "0.0.0.0:9464",
            "[::]:9464",
            "192.168.1.5:9464",
            "[2001:db8::1]:1",
        ] {
            let w = exposure_warning(exposed, exposed.parse().unwrap()).expect(exposed);
            assert!(
                w.contains(exposed) && w.contains("exposed to the network"),
                "{w}"
            );
        }
        // What `:PORT` and `PORT` bind is loopback.
        for short in [":9464", "9464"] {
            let bound = with_default_host(short).parse().unwrap();
            assert_eq!(exposure_warning(short, bound), None);
        }
    }
}
