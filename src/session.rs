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
use std::sync::Arc;

use ct_shadow::{Budget, Metrics, MetricsServer, RunMeta, Sampler, ShadowConfig, ShadowSession};

use crate::filters::{FilterChain, FilterSummary, LoadOptions};
use crate::naming::{legacy_engine, Engine, GlobalsNamer, ModuleNamer, PySysModules};
use crate::policy::{process_env, CliOverrides, Layer, Policy, PolicyError};
use crate::tracer::scope::{Scoping, ValueCounters};
use crate::tracer::shadow::{shadow_engine, ShadowSide};
use crate::tracer::{
    threads, EventCounts, Naming, NamingCounts, OnError, Recorder, RecorderOptions,
    DROPPED_REENTRANT, RECORDER,
};
use crate::writer::{write_atomically, EventSink, TraceBuilder, TraceFormat};

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
    pub metrics_linger: f64,
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
static PYTHON_API: Mutex<(Option<bool>, Option<bool>)> = Mutex::new((None, None));
/// The policy `ct-record` computed before handing over to the launcher.
static PENDING_POLICY: Mutex<Option<Policy>> = Mutex::new(None);

pub fn configure_python_api(module_name_from_globals: Option<bool>, shadow_compare: Option<bool>) {
    if let Ok(mut g) = PYTHON_API.lock() {
        if module_name_from_globals.is_some() {
            g.0 = module_name_from_globals;
        }
        if shadow_compare.is_some() {
            g.1 = shadow_compare;
        }
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
    let (m, s) = PYTHON_API.lock().map(|g| *g).unwrap_or((None, None));
    policy.apply_python_api(m, s);
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
    policy_json: serde_json::Value,
    filter_summary: FilterSummary,
    metrics: Option<MetricsRuntime>,
}

static SESSION: Mutex<Option<SessionInfo>> = Mutex::new(None);

/// What `stop` reports back (also written into `trace_metadata.json`).
#[derive(Serialize, Clone, Debug)]
pub struct SessionSummary {
    // Text (lossy) so that a non-UTF-8 directory never stops the summary from serialising.
    pub trace_dir: String,
    pub events_file: String,
    pub events: u64,
    pub counts: EventCounts,
    pub recorder_errors: Vec<String>,
    pub recorder_error_count: u64,
    pub dropped_reentrant_events: u64,
    pub duration_seconds: f64,
    pub naming: NamingCounts,
    pub filters: FilterStats,
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
    format: &'static str,
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
        ct_shadow::push::Gateway::parse(url)
            .map_err(|e| crate::ConfigError::new_err(e.to_string()))?;
    }
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
                        eprintln!(
                            "ct-record: serving metrics on http://{}/metrics",
                            server.local_addr()
                        );
                        tracing::info!(addr = %server.local_addr(), "metrics server bound");
                        Some(server)
                    }
                    Err(e) if cfg.shadow.metrics_required => {
                        return Err(bad("--metrics-addr", &e));
                    }
                    Err(e) => {
                        eprintln!(
                            "ct-record: warning: --metrics-addr: {e}; carrying on without /metrics"
                        );
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
            run_id: format!("{}-{}", started.as_secs(), std::process::id()),
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
    let program_path = PathBuf::from(&cfg.program);
    let sink = match EventSink::create(&cfg.trace_dir, cfg.format, &cfg.program, &cfg.args) {
        Ok(sink) => sink,
        Err(e) => {
            if !existed {
                let _ = std::fs::remove_dir(&cfg.trace_dir);
            }
            return Err(PyOSError::new_err(format!(
                "cannot write the trace directory '{}': {e}",
                given_dir.display()
            )));
        }
    };
    let builder = TraceBuilder::new(sink, &program_path);
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
                    eprintln!("ct-record: warning: shadow mode off for this run: cannot write the shadow artifacts: {e}");
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
    *RECORDER
        .lock()
        .map_err(|_| PyRuntimeError::new_err("recorder state poisoned"))? = Some(recorder);
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
        policy_json: cfg.policy.to_json(),
        filter_summary,
        metrics: metrics_rt,
    });
    drop(session);
    if let Err(e) = threads::install_all(py) {
        let _ = stop(py, None);
        return Err(e);
    }
    tracing::info!(engine = engine.as_str(), "recording session started");
    Ok(())
}

/// Hands buffered events to the writer thread (used before the process may die).
pub fn flush() {
    if let Ok(mut guard) = RECORDER.try_lock() {
        if let Some(rec) = guard.as_mut() {
            rec.builder_mut().flush();
        }
    }
}

pub fn stop(py: Python<'_>, exit_code: Option<i32>) -> PyResult<Option<SessionSummary>> {
    let _span = tracing::info_span!("session_stop", exit_code = ?exit_code).entered();
    threads::uninstall_all(py);
    let Some(mut info) = SESSION.lock().ok().and_then(|mut s| s.take()) else {
        return Ok(None);
    };
    let recorder = RECORDER.lock().ok().and_then(|mut r| r.take());
    let Some(mut recorder) = recorder else {
        return Ok(None);
    };
    recorder.sync_metrics();
    let legacy_resolvers = recorder.legacy_resolver_reports();
    let shadow_side = recorder.shadow.take();
    let counts = recorder.counts();
    let errors = std::mem::take(&mut recorder.errors);
    let error_count = recorder.error_count;
    let mut naming = std::mem::take(&mut recorder.naming_counts);
    naming.legacy_resolvers = legacy_resolvers;
    let filters = FilterStats {
        skipped_code_objects: recorder.scoping.skipped_by_filter,
        values: std::mem::take(&mut recorder.scoping.values),
    };
    let builder = recorder.builder_mut();
    // Paths are recorded from lossy text, so they serialise; never panic on the way out.
    let paths = serde_json::to_vec(builder.path_list()).unwrap_or_else(|_| b"[]".to_vec());
    let events_file = builder.events_path().to_path_buf();
    let finished = builder.finish();
    // Code objects are released here, with the GIL held.
    drop(recorder);
    let events = finished.map_err(|e| PyOSError::new_err(e.to_string()))?;
    let summary = SessionSummary {
        trace_dir: info.trace_dir.to_string_lossy().into_owned(),
        events_file: events_file.to_string_lossy().into_owned(),
        events,
        counts,
        recorder_errors: errors,
        recorder_error_count: error_count,
        dropped_reentrant_events: DROPPED_REENTRANT.load(Ordering::Relaxed),
        duration_seconds: info.started.elapsed().as_secs_f64(),
        naming,
        filters,
    };
    finish_metrics(py, &mut info, shadow_side, exit_code);
    let python: String = py.import("sys")?.getattr("version")?.extract()?;
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
        format: info.format.as_str(),
        module_naming: NamingInfo {
            engine: info.engine.as_str(),
            layer: &info.engine_layer,
        },
        policy: &info.policy_json,
        filters: &info.filter_summary,
        summary: &summary,
    };
    let write = |name: &str, bytes: &[u8]| {
        write_atomically(&info.trace_dir.join(name), bytes).map_err(|e| {
            PyOSError::new_err(format!(
                "writing {}: {e}",
                info.trace_dir.join(name).display()
            ))
        })
    };
    write("trace_paths.json", &paths)?;
    write(
        "trace_metadata.json",
        &serde_json::to_vec_pretty(&metadata)
            .map_err(|e| PyOSError::new_err(format!("trace_metadata.json: {e}")))?,
    )?;
    tracing::info!(
        trace_dir = %info.trace_dir.display(),
        events = summary.events,
        "recording session stopped"
    );
    Ok(Some(summary))
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

/// End of run for metrics and shadow mode: artifacts, the stderr summary, the push, and
/// lingering for a last scrape. Failures are reported, never raised: the trace matters more.
fn finish_metrics(
    py: Python<'_>,
    info: &mut SessionInfo,
    shadow: Option<ShadowSide>,
    exit_code: Option<i32>,
) {
    let Some(rt) = info.metrics.take() else {
        return;
    };
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
    };
    // The counts are final: the artifacts, the push and any later scrape say so.
    rt.metrics.set_finished();
    match (&shadow, rt.shadow_on) {
        (Some(side), _) => match side.session.finish(&meta) {
            Ok(summary) => {
                if !rt.opts.quiet {
                    eprint!("{}", ct_shadow::render_summary(&summary));
                }
            }
            Err(e) => eprintln!("ct-record: error: writing the shadow artifacts failed: {e}"),
        },
        _ => {
            if let Err(e) = ct_shadow::write_metrics_file(&info.trace_dir, &rt.metrics) {
                eprintln!("ct-record: error: writing metrics.prom failed: {e}");
            }
        }
    }
    if let Some(url) = &rt.opts.metrics_push {
        match ct_shadow::push::push(url, "ct-record", &rt.run_id, rt.metrics.registry()) {
            Ok(()) => tracing::info!(
                "pushed metrics to {url} (job ct-record, run_id {})",
                rt.run_id
            ),
            Err(e) => eprintln!("ct-record: warning: --metrics-push {url}: {e}"),
        }
    }
    if let Some(server) = rt.server {
        if rt.opts.metrics_linger > 0.0 {
            let linger = std::time::Duration::from_secs_f64(rt.opts.metrics_linger);
            tracing::info!(
                "serving final metrics at http://{}/metrics for {} s",
                server.local_addr(),
                rt.opts.metrics_linger
            );
            // Scrapes never need the GIL; let other threads run while we wait.
            py.allow_threads(|| std::thread::sleep(linger));
        }
        server.shutdown();
    }
}
