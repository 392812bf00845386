//! Adding runs up: [`aggregate`] and [`Aggregate`].
//!
//! Counts come from each run's `summary.json`, which the recorder keeps in memory and writes
//! last, so they include divergences whose log line was lost. Everything that needs the
//! records themselves (deciding rules, the top unexpected divergences and their examples)
//! comes from `divergences.ndjson`, and can fall short of the counts when lines were lost;
//! [`RunLine::notes`] says when.

use std::collections::{BTreeMap, BTreeSet};

use ct_shadow::summary::{EntryKind, KindCount};
use ct_shadow::{Divergence, DivergenceKind, Engine, Exec, RuleRef, Severity};
use serde::Serialize;

use crate::confidence::RateBound;
use crate::evidence::{DuplicateRun, PrometheusCoverage};
use crate::load::{LogState, RunReport};

/// How many distinct unexpected divergences [`aggregate`] keeps.
pub const DEFAULT_TOP: usize = 10;

/// Several runs added up. Every list is in a fixed order and every map is sorted, so the same
/// runs always give the same value (and the same JSON).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Aggregate {
    /// One line per run, in the order given.
    pub runs: Vec<RunLine>,
    pub run_count: u64,
    /// Code objects named by both engines and compared.
    pub comparisons: u64,
    /// First sights not compared: `sampled_out`, `budget_exhausted`.
    pub skipped: SkippedTotals,
    pub divergences: DivergenceTotals,
    /// `divergences.unexpected / comparisons`; `None` without comparisons.
    pub unexpected_rate: Option<f64>,
    /// The unexpected rate with the upper end of its 95 % Clopper–Pearson interval (what the
    /// rate gate compares); `None` without comparisons.
    pub unexpected_bound: Option<RateBound>,
    pub filter_decision_changes: FilterChanges,
    /// Engine → fallback reason → count (zeros left out).
    pub fallbacks: BTreeMap<Engine, BTreeMap<String, u64>>,
    /// Engine → errors it reported.
    pub engine_errors: BTreeMap<Engine, u64>,
    /// The most frequent distinct unexpected divergences, most frequent first.
    pub top_unexpected: Vec<DivergenceGroup>,
    /// How many distinct unexpected divergences the logs hold (of which `top_unexpected`
    /// shows the first few).
    pub distinct_unexpected: u64,
    /// Arguments that reached a run already counted, and were not counted again (filled in
    /// by [`crate::Evidence::aggregate`]; empty from [`aggregate`]).
    pub duplicates: Vec<DuplicateRun>,
    /// What `--prometheus` contributed (`None` without it).
    pub prometheus: Option<PrometheusCoverage>,
    /// What kinds of programs the runs were.
    pub programs: ProgramCoverage,
}

/// How many runs were of each kind of program (from `summary.json`'s `program`). A run can
/// be several at once: `-m pytest` with threads is a module, a test runner and threaded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProgramCoverage {
    /// `ct-record SCRIPT`.
    pub scripts: u64,
    /// `ct-record -m MODULE`.
    pub modules: u64,
    /// `ct_recorder.start()` inside a program.
    pub api: u64,
    /// Test runners (`pytest`, `unittest`…), by either entry.
    pub test_runners: u64,
    /// Code run through `runpy` (`-m`, or `runpy.run_*` in the program).
    pub runpy: u64,
    /// More than one thread compared.
    pub threaded: u64,
    /// Runs that wrote no trace (`--evidence-only`): full evidence, counted like any run.
    pub evidence_only: u64,
    /// Runs whose kind is not known: from Prometheus, or summaries of older recorders.
    pub unknown: u64,
}

/// One run, in brief.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunLine {
    /// The run directory, as given.
    pub dir: String,
    /// From the summary; may be empty.
    pub run_id: String,
    pub primary: Engine,
    pub shadow: Option<Engine>,
    pub comparisons: u64,
    pub divergences: u64,
    pub unexpected: u64,
    pub filter_decision_changes: u64,
    /// `trace`, or `evidence-only` (a run that wrote no trace; full evidence all the same).
    pub recording: ct_shadow::Recording,
    pub log: LogState,
    /// See [`RunReport::notes`].
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SkippedTotals {
    pub sampled_out: u64,
    pub budget_exhausted: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DivergenceTotals {
    pub total: u64,
    /// Predicted by ADR 0016.
    pub expected: u64,
    /// Not predicted by ADR 0016: what the rollout gates on.
    pub unexpected: u64,
    /// Kind label → severity and the expected/unexpected split. Every kind any summary lists
    /// is here, zeros included; a kind this version does not know is kept under its label.
    pub by_kind: BTreeMap<String, KindCount>,
}

impl DivergenceTotals {
    /// The kinds that occurred, worst first: any unexpected, then severity, then count, then
    /// name.
    pub fn worst_first(&self) -> Vec<(&str, &KindCount)> {
        ct_shadow::summary::kinds_worst_first(&self.by_kind)
    }
}

/// Code objects whose trace/skip decision differs between the engines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FilterChanges {
    /// `trace_to_skip + skip_to_trace`.
    pub total: u64,
    /// The legacy engine's name was traced, the globals engine's is skipped.
    pub trace_to_skip: u64,
    /// The legacy engine's name was skipped, the globals engine's is traced.
    pub skip_to_trace: u64,
    /// The deciding rules behind the changes found in the logs, one entry per distinct
    /// (direction, legacy rule, globals rule), most frequent first.
    pub rules: Vec<RuleChange>,
}

/// One distinct pair of deciding rules behind filter decision changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleChange {
    /// The legacy engine's decision.
    pub from: Exec,
    /// The globals engine's decision.
    pub to: Exec,
    /// The rule that decided for the legacy name (`None`: the chain's default).
    pub legacy_rule: Option<RuleRef>,
    /// The rule that decided for the globals name (`None`: the chain's default).
    pub globals_rule: Option<RuleRef>,
    /// Log records with this pair.
    pub count: u64,
    /// The first such record.
    pub example: NamePair,
}

/// A code object, both engines' names for it, and the module names their filters judged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NamePair {
    pub filename: String,
    pub qualname: String,
    pub globals_name: Option<String>,
    pub legacy_name: Option<String>,
    /// The module name the globals engine's filters tested (`None`: none, or not recorded).
    pub globals_filter_name: Option<String>,
    /// The module name the legacy filters tested: the filter engine's own resolver (spec L7),
    /// which can differ from `legacy_name` and is then why a rule flips.
    pub legacy_filter_name: Option<String>,
}

impl NamePair {
    fn of(d: &Divergence) -> NamePair {
        NamePair {
            filename: d.filename.clone(),
            qualname: d.qualname.clone(),
            globals_name: d.globals().name.clone(),
            legacy_name: d.legacy().name.clone(),
            globals_filter_name: judged(d.globals()),
            legacy_filter_name: judged(d.legacy()),
        }
    }

    /// Whether a filter judged another name than its engine's label name, so the names
    /// alone do not explain the decisions.
    pub fn filters_judged_other_names(&self) -> bool {
        (self.legacy_filter_name.is_some() && self.legacy_filter_name != self.legacy_name)
            || (self.globals_filter_name.is_some() && self.globals_filter_name != self.globals_name)
    }
}

fn judged(r: &ct_shadow::EngineRecord) -> Option<String> {
    r.filter.as_ref().and_then(|f| f.module_name.clone())
}

/// Unexpected divergences of one kind on one code object (file and qualname), across runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DivergenceGroup {
    pub kind: DivergenceKind,
    pub severity: Severity,
    pub filename: String,
    pub qualname: String,
    /// Log records in the group.
    pub count: u64,
    /// Runs with at least one of them.
    pub runs: u64,
    /// The first record of the group, whole.
    pub example: Divergence,
}

/// [`aggregate_with`] keeping the [`DEFAULT_TOP`] most frequent unexpected divergences.
pub fn aggregate(runs: &[RunReport]) -> Aggregate {
    aggregate_with(runs, DEFAULT_TOP)
}

/// Adds up `runs`, keeping the `top` most frequent distinct unexpected divergences.
pub fn aggregate_with(runs: &[RunReport], top: usize) -> Aggregate {
    let mut agg = Aggregate {
        runs: Vec::with_capacity(runs.len()),
        run_count: runs.len() as u64,
        comparisons: 0,
        skipped: SkippedTotals::default(),
        divergences: DivergenceTotals::default(),
        unexpected_rate: None,
        unexpected_bound: None,
        filter_decision_changes: FilterChanges::default(),
        fallbacks: BTreeMap::new(),
        engine_errors: BTreeMap::new(),
        top_unexpected: Vec::new(),
        distinct_unexpected: 0,
        duplicates: Vec::new(),
        prometheus: None,
        programs: ProgramCoverage::default(),
    };
    let mut rules = RuleTally::default();
    let mut groups = GroupTally::default();
    for (i, run) in runs.iter().enumerate() {
        add_summary(&mut agg, run);
        for d in &run.divergences {
            rules.add(d);
            if !d.expected_by_adr {
                groups.add(i, d);
            }
        }
    }
    let d = &agg.divergences;
    agg.unexpected_rate =
        (agg.comparisons > 0).then(|| d.unexpected as f64 / agg.comparisons as f64);
    agg.unexpected_bound = RateBound::of(d.unexpected, agg.comparisons);
    let f = &mut agg.filter_decision_changes;
    f.total = f.trace_to_skip + f.skip_to_trace;
    f.rules = rules.finish();
    agg.distinct_unexpected = groups.0.len() as u64;
    agg.top_unexpected = groups.finish(top);
    agg
}

fn add_summary(agg: &mut Aggregate, run: &RunReport) {
    let s = &run.summary;
    let changes = s.filter_decision_changes.trace_to_skip + s.filter_decision_changes.skip_to_trace;
    agg.runs.push(RunLine {
        dir: run.dir.display().to_string(),
        run_id: s.run.meta.run_id.clone(),
        primary: s.run.primary,
        shadow: s.run.shadow,
        comparisons: s.comparisons,
        divergences: s.divergences.total,
        unexpected: s.divergences.unexpected,
        filter_decision_changes: changes,
        recording: s.run.meta.recording,
        log: run.log,
        notes: run.notes(),
    });
    agg.comparisons += s.comparisons;
    let p = &mut agg.programs;
    match s.program.as_ref() {
        None => p.unknown += 1,
        Some(prog) => {
            match prog.entry.as_ref().map(|e| e.kind) {
                Some(EntryKind::Script) => p.scripts += 1,
                Some(EntryKind::Module) => p.modules += 1,
                Some(EntryKind::Api) => p.api += 1,
                None => p.unknown += 1,
            }
            if prog.entry.as_ref().is_some_and(|e| e.test_runner.is_some()) {
                p.test_runners += 1;
            }
            p.runpy += u64::from(prog.runpy);
            p.threaded += u64::from(prog.threads > 1);
        }
    }
    p.evidence_only += u64::from(s.run.meta.recording == ct_shadow::Recording::EvidenceOnly);
    agg.skipped.sampled_out += s.skipped.sampled_out;
    agg.skipped.budget_exhausted += s.skipped.budget_exhausted;

    let d = &mut agg.divergences;
    d.total += s.divergences.total;
    d.expected += s.divergences.expected;
    d.unexpected += s.divergences.unexpected;
    for (kind, c) in &s.divergences.by_kind {
        let into = d.by_kind.entry(kind.clone()).or_insert(KindCount {
            severity: c.severity,
            expected: 0,
            unexpected: 0,
        });
        into.expected += c.expected;
        into.unexpected += c.unexpected;
    }

    let f = &mut agg.filter_decision_changes;
    f.trace_to_skip += s.filter_decision_changes.trace_to_skip;
    f.skip_to_trace += s.filter_decision_changes.skip_to_trace;

    for (engine, reasons) in &s.fallbacks {
        let into = agg.fallbacks.entry(*engine).or_default();
        for (reason, n) in reasons {
            if *n > 0 {
                *into.entry(reason.clone()).or_default() += n;
            }
        }
    }
    for (engine, n) in &s.engine_errors {
        *agg.engine_errors.entry(*engine).or_default() += n;
    }
}

/// A rule as a sortable key: (source, index, selector).
type RuleKey = Option<(String, usize, String)>;

fn rule_key(r: &Option<RuleRef>) -> RuleKey {
    r.as_ref()
        .map(|r| (r.source.clone(), r.index, r.selector.clone()))
}

#[derive(Default)]
struct RuleTally(BTreeMap<(u8, RuleKey, RuleKey), RuleChange>);

impl RuleTally {
    fn add(&mut self, d: &Divergence) {
        // The same test the session counts changes with: both engines filtered, on different
        // engines, with different decisions. It catches the changes hidden behind an
        // engine-error kind too.
        if d.primary.engine == d.shadow.engine {
            return;
        }
        let (Some(l), Some(g)) = (&d.legacy().filter, &d.globals().filter) else {
            return;
        };
        if l.exec == g.exec {
            return;
        }
        let direction = u8::from(l.exec == Exec::Skip);
        let key = (direction, rule_key(&l.rule), rule_key(&g.rule));
        self.0
            .entry(key)
            .or_insert_with(|| RuleChange {
                from: l.exec,
                to: g.exec,
                legacy_rule: l.rule.clone(),
                globals_rule: g.rule.clone(),
                count: 0,
                example: NamePair::of(d),
            })
            .count += 1;
    }

    fn finish(self) -> Vec<RuleChange> {
        // Stable: the map's key order breaks ties between equal counts.
        let mut out: Vec<RuleChange> = self.0.into_values().collect();
        out.sort_by_key(|g| std::cmp::Reverse(g.count));
        out
    }
}

#[derive(Default)]
struct GroupTally(BTreeMap<(DivergenceKind, String, String), (DivergenceGroup, BTreeSet<usize>)>);

impl GroupTally {
    fn add(&mut self, run: usize, d: &Divergence) {
        let key = (d.kind, d.filename.clone(), d.qualname.clone());
        let (group, runs) = self.0.entry(key).or_insert_with(|| {
            (
                DivergenceGroup {
                    kind: d.kind,
                    severity: d.severity,
                    filename: d.filename.clone(),
                    qualname: d.qualname.clone(),
                    count: 0,
                    runs: 0,
                    example: d.clone(),
                },
                BTreeSet::new(),
            )
        });
        group.count += 1;
        runs.insert(run);
    }

    fn finish(self, top: usize) -> Vec<DivergenceGroup> {
        let mut out: Vec<DivergenceGroup> = self
            .0
            .into_values()
            .map(|(mut g, runs)| {
                g.runs = runs.len() as u64;
                g
            })
            .collect();
        // Most frequent first; the map's (kind, file, qualname) order breaks ties.
        out.sort_by_key(|g| std::cmp::Reverse(g.count));
        out.truncate(top);
        out
    }
}
