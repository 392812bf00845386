//! [`ShadowSession`]: what the recorder holds for a run with `--shadow-compare`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::artifacts::{
    at, roots_digest, write_atomic, write_json_atomic, ArtifactError, DivergenceLog, RootsFile,
    METRICS_FILE, ROOTS_FILE, SHADOW_DIR, SUMMARY_FILE,
};
use crate::compare::{compare, Divergence};
use crate::metrics::{Metrics, SkipReason};
use crate::model::{Engine, Observation};
use crate::sampling::{Budget, BudgetState, Sampler};
use crate::summary::{self, ArtifactState, RunMeta, SamplingState, Summary, SummaryInputs};
use crate::taxonomy::DivergenceKind;

/// How a shadow run is set up.
#[derive(Debug)]
pub struct ShadowConfig {
    /// The run directory (`--trace-dir`); artifacts go to `<run_dir>/shadow/`.
    pub run_dir: PathBuf,
    /// `--shadow-sample` (default: every file).
    pub sampler: Sampler,
    /// `--shadow-budget` (default: none).
    pub budget: Option<Budget>,
}

impl ShadowConfig {
    /// Compare everything, no budget.
    pub fn new(run_dir: impl Into<PathBuf>) -> ShadowConfig {
        ShadowConfig {
            run_dir: run_dir.into(),
            sampler: Sampler::default(),
            budget: None,
        }
    }
}

/// Whether to run the shadow engine on a code object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    Compare,
    /// Outside the sample: do not run the shadow engine.
    SampledOut,
    /// The budget ran out: do not run the shadow engine.
    BudgetExhausted,
}

/// One run's shadow comparison: sampling, budget, metrics and the divergence log. Shared by
/// all recording threads (`Sync`); the divergence log is behind a mutex, taken only to write
/// a divergence.
#[derive(Debug)]
pub struct ShadowSession {
    metrics: Arc<Metrics>,
    sampler: Sampler,
    budget: Option<Budget>,
    dir: PathBuf,
    started: Instant,
    log: Mutex<DivergenceLog>,
    roots: Mutex<RootsFile>,
    /// `[kind][0 = expected, 1 = unexpected]`.
    split: Vec<[AtomicU64; 2]>,
    first_error: Mutex<Option<String>>,
    /// Threads whose code objects were compared (`summary.json` `program.threads`).
    threads: Mutex<std::collections::BTreeSet<u64>>,
}

impl ShadowSession {
    /// Starts a session: creates `<run_dir>/shadow/` and an empty `divergences.ndjson`.
    /// The session's clock (budget, `elapsed`) starts now.
    pub fn start(config: ShadowConfig, metrics: Arc<Metrics>) -> Result<Self, ArtifactError> {
        let dir = config.run_dir.join(SHADOW_DIR);
        let log = DivergenceLog::create(&dir)?;
        metrics.set_budget_exhausted(false);
        metrics.set_sample_rate(config.sampler.rate());
        Ok(ShadowSession {
            metrics,
            sampler: config.sampler,
            budget: config.budget,
            dir,
            started: Instant::now(),
            log: Mutex::new(log),
            roots: Mutex::new(RootsFile::new()),
            split: DivergenceKind::ALL
                .iter()
                .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
                .collect(),
            first_error: Mutex::new(None),
            threads: Mutex::new(std::collections::BTreeSet::new()),
        })
    }

    /// Time since [`ShadowSession::start`]; use it for [`Observation::first_seen`].
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn shadow_dir(&self) -> &Path {
        &self.dir
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Decides, before running the shadow engine, whether a code object from `filename` is
    /// compared, and counts the ones that are not.
    pub fn gate(&self, filename: &str) -> Gate {
        if self.budget.as_ref().is_some_and(Budget::is_exhausted) {
            self.metrics.inc_skipped(SkipReason::BudgetExhausted);
            tracing::trace!(file = filename, "shadow: not compared, budget exhausted");
            return Gate::BudgetExhausted;
        }
        if !self.sampler.should_compare(filename) {
            self.metrics.inc_skipped(SkipReason::SampledOut);
            tracing::trace!(file = filename, "shadow: not compared, sampled out");
            return Gate::SampledOut;
        }
        tracing::trace!(file = filename, "shadow: compared");
        Gate::Compare
    }

    /// Records that the legacy engine uses the `sys.path` roots `roots` (in its order) and
    /// returns their digest for [`Observation::sys_path_roots`]. The first time a digest is
    /// seen, `roots.json` is rewritten (atomically).
    pub fn register_roots<S: AsRef<str>>(&self, roots: &[S]) -> String {
        let digest = roots_digest(roots);
        let mut file = self.roots.lock().unwrap_or_else(|p| p.into_inner());
        if !file.roots.contains_key(&digest) {
            file.roots.insert(
                digest.clone(),
                roots.iter().map(|r| r.as_ref().to_owned()).collect(),
            );
            if let Err(e) = write_json_atomic(&self.dir.join(ROOTS_FILE), &*file) {
                self.write_failed(&e);
            }
        }
        digest
    }

    /// Takes one compared code object: counts the shadow engine's answer, charges the budget,
    /// compares, counts and logs the divergence if any, and returns it. Never fails: a log
    /// write error is counted (`ct_shadow_artifact_write_errors_total`) and kept for the
    /// summary, because the shadow must not disturb the recording.
    ///
    /// The primary engine's answer is not counted here: the recorder counts it for every code
    /// object with [`Metrics::observe_resolution`].
    pub fn observe(&self, obs: &Observation) -> Option<Divergence> {
        let m = &self.metrics;
        m.observe_resolution(&obs.shadow);
        if let Some(b) = &self.budget {
            if !b.charge(obs.shadow.elapsed_ns, self.started.elapsed()) {
                m.set_budget_exhausted(true);
            }
        }
        m.inc_comparisons();
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(obs.thread_id);
        if let (Some(p), Some(s)) = (&obs.primary.filter, &obs.shadow.filter) {
            let (legacy, globals) = if obs.primary.engine == Engine::Legacy {
                (p.exec, s.exec)
            } else {
                (s.exec, p.exec)
            };
            if obs.primary.engine != obs.shadow.engine {
                m.inc_filter_change(legacy, globals);
            }
        }
        let d = compare(obs)?;
        m.inc_divergence(d.kind);
        if !d.expected_by_adr {
            m.inc_unexpected(d.kind);
        }
        let slot = usize::from(!d.expected_by_adr);
        self.split[d.kind as usize][slot].fetch_add(1, Ordering::Relaxed);
        let written = self
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .append(&d);
        if let Err(e) = written {
            self.write_failed(&e);
        }
        Some(d)
    }

    fn write_failed(&self, e: &ArtifactError) {
        self.metrics.inc_artifact_errors();
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert_with(|| e.to_string());
    }

    /// The budget's state (a budget of `None` fraction when none was set).
    pub fn budget_state(&self) -> BudgetState {
        match &self.budget {
            Some(b) => b.state(),
            None => BudgetState {
                fraction: None,
                floor_seconds: 0.0,
                shadow_seconds: self.metrics.timing(self.shadow_engine()).total_seconds,
                exhausted: false,
                exhausted_at_seconds: None,
            },
        }
    }

    fn shadow_engine(&self) -> Engine {
        self.metrics
            .info()
            .shadow
            .unwrap_or(self.metrics.info().primary.other())
    }

    /// The summary as of now.
    pub fn summary(&self, meta: &RunMeta) -> Summary {
        summary::build(SummaryInputs {
            metrics: &self.metrics,
            meta,
            duration_seconds: self.started.elapsed().as_secs_f64(),
            split: self
                .split
                .iter()
                .map(|[e, u]| [e.load(Ordering::Relaxed), u.load(Ordering::Relaxed)])
                .collect(),
            sampling: SamplingState {
                rate: self.sampler.rate(),
            },
            budget: self.budget_state(),
            threads: self.threads.lock().unwrap_or_else(|p| p.into_inner()).len() as u64,
            artifacts: ArtifactState {
                dir: self.dir.display().to_string(),
                divergence_lines: self.log.lock().unwrap_or_else(|p| p.into_inner()).lines(),
                write_errors: self.metrics.artifact_errors(),
                first_write_error: self
                    .first_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
            },
        })
    }

    /// Run end: writes `summary.json` and `metrics.prom` (atomically) and returns the summary
    /// (for [`crate::render_summary`]). Can be called again; each call rewrites both files.
    pub fn finish(&self, meta: &RunMeta) -> Result<Summary, ArtifactError> {
        let summary = self.summary(meta);
        let summary_path = self.dir.join(SUMMARY_FILE);
        let metrics_path = self.dir.join(METRICS_FILE);
        let result = write_json_atomic(&summary_path, &summary).and_then(|()| {
            let text = self.metrics.render();
            write_atomic(&metrics_path, |w| w.write_all(text.as_bytes())).map_err(at(&metrics_path))
        });
        if let Err(e) = &result {
            self.write_failed(e);
        }
        result.map(|()| summary)
    }
}

/// Writes `<run_dir>/shadow/metrics.prom` for a run without `--shadow-compare` (the
/// registry is still worth keeping).
pub fn write_metrics_file(run_dir: &Path, metrics: &Metrics) -> Result<PathBuf, ArtifactError> {
    let dir = run_dir.join(SHADOW_DIR);
    std::fs::create_dir_all(&dir).map_err(at(&dir))?;
    let path = dir.join(METRICS_FILE);
    let text = metrics.render();
    write_atomic(&path, |w| w.write_all(text.as_bytes())).map_err(at(&path))?;
    Ok(path)
}
