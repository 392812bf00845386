//! # ct-reports: is the globals engine ready to be the default?
//!
//! A shadow run (`ct-record --shadow-compare`) names every sampled code object with both
//! module-naming engines and leaves its evidence in `<run dir>/shadow/` (crate `ct-shadow`,
//! `docs/divergences.md`). This crate turns the evidence of many runs into one answer for the
//! rollout (`docs/rollout.md`): what differed, how often, whether ADR 0016 predicted it, and
//! whether the manifest's readiness gates are met. `ct-rollout report` only wires it to the
//! command line.
//!
//! ## The model
//!
//! 1. **Load** ([`load_run`]): one run directory becomes a [`RunReport`]. `summary.json` is
//!    required and is the authority on every count: the recorder keeps the counts in memory
//!    and writes the summary last, so it also counts divergences whose log line was lost.
//!    `divergences.ndjson` is optional and gives the details: names, deciding rules, examples.
//!    A torn last line (a killed recorder) is skipped and noted; anything else that cannot
//!    be read is a [`ReportError`] naming the file and line. Nothing here panics on bad
//!    input.
//! 2. **Aggregate** ([`aggregate`]): runs add up into an [`Aggregate`]: comparisons,
//!    divergences per kind split by whether ADR 0016 expects them, the *unexpected rate*
//!    (unexpected divergences ÷ comparisons), filter decision changes with the rule pairs
//!    behind them, fallbacks, engine errors, and the most frequent distinct unexpected
//!    divergences, grouped by (kind, file, qualname), each with a whole example record.
//! 3. **Gate** ([`Gates::from_manifest`], [`check`]): the `[gates]` table of `rollout.toml`
//!    sets minimums of evidence (`min_runs`, `min_comparisons`) and maximums of risk
//!    (`max_unexpected_divergence_rate`, `max_filter_decision_changes`). Each configured
//!    gate gives a [`GateResult`] with the measured value, the threshold and an explanation
//!    that says what to do when it fails. The rate gate compares the upper end of the rate's
//!    95 % Clopper–Pearson interval ([`confidence`]), not the rate itself, and says how many
//!    further clean comparisons would pass. A `[gates]` key this version does not know fails
//!    rather than being skipped.
//!
//! [`load_evidence`] and [`assess`] put the steps together for the command line: every run
//! is counted once, however many arguments reach it ([`Evidence`]), and [`assess`] is the one
//! function `ct-rollout report --check` and the lifecycle commands gate with.
//! 4. **Render** ([`render`]): the same report as a terminal table (at most
//!    [`TABLE_WIDTH`] columns), Markdown for a pull-request comment, or JSON
//!    ([`JsonReport`], schema [`REPORT_SCHEMA`]) for machines. Every format puts the gates
//!    first and is deterministic for the same input.
//!
//! ```
//! use std::sync::Arc;
//! use ct_shadow::*;
//! use ct_reports::{assess, load_evidence, render, Format, Gates};
//!
//! // A shadow run, as the recorder would make it.
//! let dir = tempfile::tempdir().unwrap();
//! let metrics = Arc::new(Metrics::new(&RecorderInfo {
//!     version: "0.1.0".into(),
//!     primary: Engine::Globals,
//!     shadow: Some(Engine::Legacy),
//! }));
//! let session = ShadowSession::start(ShadowConfig::new(dir.path()), metrics).unwrap();
//! session.observe(&Observation {
//!     filename: "/srv/app/src/mypkg/core.py".into(),
//!     qualname: "<module>".into(),
//!     is_module: true,
//!     globals_name: GlobalsName::str("mypkg.core"),
//!     spec_name: Some("mypkg.core".into()),
//!     sys_path_roots: session.register_roots(&["/srv/app"]),
//!     primary: EngineResult::named(Engine::Globals, "mypkg.core"),
//!     shadow: EngineResult::named(Engine::Legacy, "src.mypkg.core"),
//!     thread_id: 1,
//!     first_seen: 0.0,
//! });
//! session.finish(&RunMeta::default()).unwrap();
//!
//! // The report.
//! // The same run given twice counts once.
//! let evidence = load_evidence(&[dir.path(), dir.path()])?;
//! let manifest = "[gates]\nmin_runs = 1\nmax_unexpected_divergence_rate = 0.001\n";
//! let a = assess(&evidence, &Gates::from_manifest(manifest)?);
//! assert_eq!(a.aggregate.run_count, 1);
//! assert_eq!(a.aggregate.divergences.by_kind["root_ambiguity"].expected, 1);
//! // No unexpected divergence, but one comparison cannot show a rate under 0.1 %.
//! assert!(a.gates[0].passed && !a.gates[1].passed);
//! print!("{}", render(&a.aggregate, &a.gates, Format::Table));
//! # Ok::<(), ct_reports::ReportError>(())
//! ```

mod aggregate;
pub mod confidence;
mod error;
mod evidence;
pub mod fix_filters;
mod format;
mod gates;
pub mod lifecycle;
mod load;
mod prometheus;
mod render;

pub use aggregate::{
    aggregate, aggregate_with, Aggregate, DivergenceGroup, DivergenceTotals, FilterChanges,
    NamePair, ProgramCoverage, RuleChange, RunLine, SkippedTotals, DEFAULT_TOP,
};
pub use confidence::RateBound;
pub use error::ReportError;
pub use evidence::{assess, load_evidence, Assessment, DuplicateRun, Evidence, PrometheusCoverage};
pub use gates::{all_passed, check, GateResult, Gates, Measure};
pub use load::{load_run, LogState, RunReport};
pub use prometheus::{parse_since, PrometheusSource, DEFAULT_SINCE};
pub use render::{render, Format, JsonReport, UnknownFormat, REPORT_SCHEMA, TABLE_WIDTH};
