//! # ct-shadow: comparing two module-naming engines on real workloads
//!
//! ct-recorder is moving module names from the **legacy resolver** (file path, `sys.path`
//! roots and a `sys.modules` scan; spec Part L) to the **globals engine** (ADR 0016:
//! `frame.f_globals["__name__"]`). In *shadow mode* both run: the **primary** engine's name is
//! recorded and drives the trace filters; the **shadow** engine runs beside it only to be
//! compared. This crate is everything about that comparison that does not need Python: the
//! recorder gathers the facts, this crate judges, counts and writes them down.
//!
//! ## The model
//!
//! For each code object, at its first sight, the recorder builds an [`Observation`]: the
//! facts (`co_filename`, qualname, `__name__` *as found*, `__spec__.name`, the digest of the
//! legacy `sys.path` roots) and one [`EngineResult`] per engine (name, fallback reason, filter
//! decision with its deciding rule, error, time). Then:
//!
//! 1. [`ShadowSession::gate`] says whether to run the shadow engine at all: files are sampled
//!    deterministically ([`Sampler`], `--shadow-sample`), and a time [`Budget`]
//!    (`--shadow-budget`) stops comparing for good when the shadow engine gets too costly.
//! 2. [`ShadowSession::observe`] counts the shadow answer, charges the budget and calls
//!    [`compare()`], which returns `None` when the engines agree or a [`Divergence`] of exactly
//!    one [`DivergenceKind`] (the taxonomy, `docs/divergences.md`), with a severity, whether
//!    ADR 0016 predicts it, and a *third opinion* (`__name__`, else `__spec__.name` for
//!    `__main__`, else the file stem) that tells a legacy quirk from a globals-engine
//!    regression. Each divergence becomes one line of `shadow/divergences.ndjson`.
//! 3. [`Metrics`] is the Prometheus registry (`docs/metrics.md`), served live by
//!    [`MetricsServer`] (`--metrics-addr`) and pushed at run end by [`push::push`]
//!    (`--metrics-push`). Label values are closed enums only.
//! 4. [`ShadowSession::finish`] writes `shadow/summary.json` and `shadow/metrics.prom`
//!    atomically; [`render_summary`] turns the [`Summary`] into one screen for stderr.
//!
//! Classification is a pure function of one observation: it does not depend on arrival
//! order, threads, timing, or which engine is primary (except for the two error kinds).
//! The shadow is a guest: nothing here panics on bad input or returns an error from the hot
//! path; artifact write failures are counted and reported in the summary instead.
//!
//! ## Wiring (recorder side)
//!
//! ```
//! use std::sync::Arc;
//! use ct_shadow::*;
//!
//! let run_dir = tempfile::tempdir().unwrap();
//! let metrics = Arc::new(Metrics::new(&RecorderInfo {
//!     version: "0.1.0".into(),
//!     primary: Engine::Globals,
//!     shadow: Some(Engine::Legacy),
//! }));
//! let session = ShadowSession::start(ShadowConfig::new(run_dir.path()), metrics.clone()).unwrap();
//! let roots = session.register_roots(&["/srv/app", "/usr/lib/python3.11"]);
//!
//! // First sight of a code object: the primary always runs and is always counted...
//! let primary = EngineResult::named(Engine::Globals, "mypkg.core");
//! metrics.observe_resolution(&primary);
//! // ...the shadow only when the gate says so.
//! if session.gate("/srv/app/src/mypkg/core.py") == Gate::Compare {
//!     let obs = Observation {
//!         filename: "/srv/app/src/mypkg/core.py".into(),
//!         qualname: "<module>".into(),
//!         is_module: true,
//!         globals_name: GlobalsName::str("mypkg.core"),
//!         spec_name: Some("mypkg.core".into()),
//!         sys_path_roots: roots,
//!         primary,
//!         shadow: EngineResult::named(Engine::Legacy, "src.mypkg.core"),
//!         thread_id: 1,
//!         first_seen: session.elapsed().as_secs_f64(),
//!     };
//!     let d = session.observe(&obs).unwrap();
//!     assert_eq!(d.kind, DivergenceKind::RootAmbiguity);
//! }
//! let summary = session.finish(&RunMeta::default()).unwrap();
//! eprint!("{}", render_summary(&summary));
//! ```

pub mod artifacts;
pub mod compare;
pub mod metrics;
pub mod model;
pub mod push;
pub mod run_marker;
pub mod sampling;
pub mod server;
pub mod session;
pub mod summary;
pub mod taxonomy;

pub use artifacts::{read_divergences, roots_digest, write_atomic, ArtifactError, DivergenceLog};
pub use compare::{
    compare, third_opinion, Divergence, EngineRecord, OpinionSource, ThirdOpinion,
    DIVERGENCE_SCHEMA, DIVERGENCE_SCHEMAS_READ,
};
pub use metrics::{Metrics, Outcome, RecorderInfo, SkipReason, TraceEvent};
pub use model::{
    fallback, is_synthetic_filename, Engine, EngineResult, Exec, FilterOutcome, GlobalsName,
    Observation, RuleRef,
};
pub use push::PushError;
pub use sampling::{fnv1a64, Budget, BudgetState, RateError, Sampler, DEFAULT_BUDGET_FLOOR};
pub use server::{MetricsServer, ServerConfig, ServerError};
pub use session::{write_metrics_file, Gate, ShadowConfig, ShadowSession};
pub use summary::{
    render_summary, render_summary_with_trace, Entry, EntryKind, FilterSourceRef, ProgramSection,
    Recording, RunMeta, Summary, TraceCut, TraceWritten,
};
pub use taxonomy::{DivergenceKind, KindInfo, Severity};
