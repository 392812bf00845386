//! The evidence a rollout decision rests on: [`Evidence`], loaded by [`load_evidence`], and
//! [`assess`], the one function that turns evidence and gates into verdicts.
//!
//! `ct-rollout report --check` and the lifecycle commands (`status`, `flip-default`,
//! `delete-legacy`) all gate through [`assess`], so they cannot disagree about whether the
//! evidence is enough.
//!
//! ## One run is one run
//!
//! A run is identified by the run id the recorder writes into `summary.json`
//! (`"{unix_secs}-{pid}"`, also the Pushgateway's `run_id` and `run.json`'s). Arguments that
//! reach the same run — the same directory twice, `dir` and `dir/shadow`, a copy of the
//! directory elsewhere — count it once; the report lists what was left out and why. Two
//! arguments with the same run id but *different* summaries are not two copies of one run:
//! the evidence contradicts itself and loading fails, naming both, rather than guessing which
//! one is right. A summary without a run id (written by a library caller, not `ct-record`) is
//! identified by its shadow directory's canonical path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ct_shadow::artifacts::SHADOW_DIR;
use serde::Serialize;

use crate::aggregate::{aggregate, Aggregate};
use crate::error::ReportError;
use crate::gates::{check, GateResult, Gates};
use crate::load::{load_run, RunReport};

/// Runs, each counted once.
#[derive(Clone, Debug, PartialEq)]
pub struct Evidence {
    /// The distinct runs, in the order their first argument was given.
    pub runs: Vec<RunReport>,
    /// Arguments left out because they reach a run already counted.
    pub duplicates: Vec<DuplicateRun>,
    /// When runs came from Prometheus too: what it contributed.
    pub prometheus: Option<PrometheusCoverage>,
}

/// What `--prometheus` contributed to the evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PrometheusCoverage {
    pub url: String,
    /// The window, as given (`7d`).
    pub since: String,
    /// Distinct runs Prometheus holds in the window.
    pub runs: u64,
    /// Of those, runs whose directory was also given: counted once, from `summary.json`,
    /// with the details of `divergences.ndjson`.
    pub with_run_dir: u64,
}

impl PrometheusCoverage {
    /// One sentence for the report.
    pub fn note(&self) -> String {
        format!(
            "{} from Prometheus {} (last {}); run directories add file names, deciding rules \
             and examples for {} of them (same run id, counted once); for the others only \
             counts are known",
            if self.runs == 1 {
                "1 run".to_owned()
            } else {
                format!("{} runs", self.runs)
            },
            self.url,
            self.since,
            self.with_run_dir
        )
    }
}

/// A run that more than one argument reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DuplicateRun {
    /// The run id (or, without one, the shadow directory).
    pub run_id: String,
    /// The argument whose copy was counted (the first given).
    pub counted: String,
    /// The other arguments that reach the same run, in the order given; not counted.
    pub ignored: Vec<String>,
}

impl DuplicateRun {
    /// One sentence for the report.
    pub fn note(&self) -> String {
        let n = self.ignored.len() + 1;
        format!(
            "run {} was given {n} times ({}, {}): counted once",
            self.run_id,
            self.counted,
            self.ignored.join(", ")
        )
    }
}

/// Verdicts on evidence: what it adds up to and each gate's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    pub aggregate: Aggregate,
    pub gates: Vec<GateResult>,
}

impl Assessment {
    /// Every gate passed (also when none was configured).
    pub fn passed(&self) -> bool {
        crate::gates::all_passed(&self.gates)
    }
}

/// Loads every run directory of `dirs` (see [`load_run`]) and counts each run once.
pub fn load_evidence<P: AsRef<Path>>(dirs: &[P]) -> Result<Evidence, ReportError> {
    let mut runs = Vec::with_capacity(dirs.len());
    for dir in dirs {
        runs.push(load_run(dir)?);
    }
    Evidence::from_runs(runs)
}

impl Evidence {
    /// Counts each run of `runs` once (see the module docs); the first argument of a run is
    /// the one kept.
    pub fn from_runs(runs: Vec<RunReport>) -> Result<Evidence, ReportError> {
        let mut kept: Vec<RunReport> = Vec::with_capacity(runs.len());
        let mut by_id: HashMap<String, usize> = HashMap::new();
        let mut duplicates: Vec<DuplicateRun> = Vec::new();
        for run in runs {
            let id = identity(&run);
            match by_id.get(&id) {
                None => {
                    by_id.insert(id, kept.len());
                    kept.push(run);
                }
                Some(&i) => {
                    let first = &kept[i];
                    if first.summary != run.summary {
                        return Err(ReportError::ConflictingRuns {
                            run_id: id,
                            first: first.dir.clone(),
                            second: run.dir.clone(),
                        });
                    }
                    let counted = first.dir.display().to_string();
                    let ignored = run.dir.display().to_string();
                    match duplicates.iter_mut().find(|d| d.run_id == id) {
                        Some(d) => d.ignored.push(ignored),
                        None => duplicates.push(DuplicateRun {
                            run_id: id,
                            counted,
                            ignored: vec![ignored],
                        }),
                    }
                }
            }
        }
        Ok(Evidence {
            runs: kept,
            duplicates,
            prometheus: None,
        })
    }

    /// Adds the runs read from Prometheus (`url`, window `since`). A run whose directory is
    /// already in the evidence (same run id) stays as the directory has it — the summary is
    /// complete and the log has the details — and is not counted again.
    pub fn with_prometheus(mut self, url: &str, since: &str, runs: Vec<RunReport>) -> Evidence {
        let known: std::collections::HashSet<String> = self.runs.iter().map(identity).collect();
        let total = runs.len() as u64;
        let mut with_run_dir = 0;
        for run in runs {
            if known.contains(&identity(&run)) {
                with_run_dir += 1;
            } else {
                self.runs.push(run);
            }
        }
        self.prometheus = Some(PrometheusCoverage {
            url: url.to_owned(),
            since: since.to_owned(),
            runs: total,
            with_run_dir,
        });
        self
    }

    /// The runs added up, with the duplicates noted.
    pub fn aggregate(&self) -> Aggregate {
        let mut agg = aggregate(&self.runs);
        agg.duplicates = self.duplicates.clone();
        agg.prometheus = self.prometheus.clone();
        agg
    }
}

/// The gates of `gates` checked against `evidence`: the verdict `report --check` and the
/// lifecycle commands act on.
pub fn assess(evidence: &Evidence, gates: &Gates) -> Assessment {
    let aggregate = evidence.aggregate();
    let gates = check(&aggregate, gates);
    Assessment { aggregate, gates }
}

/// The run id, or the canonical shadow directory when the summary has none.
fn identity(run: &RunReport) -> String {
    let id = &run.summary.run.meta.run_id;
    if !id.is_empty() {
        return id.clone();
    }
    let dir = if run.dir.file_name().is_some_and(|n| n == SHADOW_DIR) {
        run.dir.clone()
    } else {
        let nested = run.dir.join(SHADOW_DIR);
        if nested.is_dir() {
            nested
        } else {
            run.dir.clone()
        }
    };
    std::fs::canonicalize(&dir)
        .unwrap_or_else(|_| PathBuf::from(&dir))
        .display()
        .to_string()
}
