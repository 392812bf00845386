//! # `ct-rollout fix-filters`: filter rules that keep their decisions under the new names
//!
//! A shadow run records every code object whose trace/skip decision differs between the
//! two engines' names (`filter_decision_changed`): the name each engine's filters judged,
//! the deciding rule of each (filter file and rule index) and both decisions. Flipping the
//! default would change what those rules record. This module proposes, for each such
//! change, the smallest edit of the project filter under which **both** names reach the
//! decision the legacy name gets today, shows it as a diff and re-evaluates every record
//! offline with the edited chain, counting what remains (the target is 0).
//!
//! ## How an edit is chosen
//!
//! Of the last rule that matched the legacy name (R_L) and the last that matched the
//! globals name (R_G), the later in chain order is the *anchor*: a new rule right after it
//! is the last to match the globals name, so it decides (spec F5: the last match wins). The
//! selector adapted is the one of the rule that set the `exec` in question, which can be an
//! earlier rule when the last match sets none (a catch-all that only sets value patterns).
//! - **R_L is the anchor** (a rule written for the legacy name, e.g. `pkg:src.shop.*` or
//!   `pkg:literal:pkg.cli`): the new rule is a copy of R_L — its `exec`, value default and
//!   value patterns — with a selector for the globals name. When the legacy name is the
//!   globals name under a prefix (`src.shop.pricing` → `shop.pricing`) and R_L's pattern
//!   starts with that prefix, the prefix is rewritten (`pkg:src.shop.*` → `pkg:shop.*`), so
//!   the rule keeps covering the whole package; otherwise the selector is the literal name.
//! - **R_G is the anchor** (a rule that now also matches the globals name, e.g.
//!   `pkg:shop.pricing` that never matched `src.shop.pricing`): the new rule is an exception
//!   after it, `pkg:literal:<globals name>` (or `obj:literal:…`), with the legacy decision
//!   and a copy of R_L's value settings, so the values recorded stay as redacted as before.
//! - A globals name of `__main__` (scripts, `-m`) or none cannot be told apart by `pkg:`:
//!   the selector is `file:literal:<path>`. An `obj:` rule there cannot be expressed (a
//!   selector cannot combine a file and an object): named as not fixable, with the reason.
//! - The anchor in the **builtin** filter: never edited; the rule to put in the project
//!   filter is printed instead, and the change counts as remaining.
//!
//! ## The seam to the filter engine
//!
//! The real filter engine (loading, selectors, F4/F5 evaluation) lives in the recorder crate,
//! next to the naming engines it takes its names from. This crate stays free of it and of
//! PyO3: the caller passes a [`FilterEngine`], and `ct-rollout` passes the recorder's own
//! (`ct_recorder::filters::OfflineEngine`), so the re-evaluation is exactly the recorder's.

mod edit;

pub use edit::FilterDoc;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ct_shadow::{DivergenceKind, Exec};
use sha2::Digest;

use crate::lifecycle::ChangeSet;
use crate::{Evidence, RunReport};

/// One source of a chain, with the text to load.
#[derive(Clone, Debug)]
pub enum ChainText {
    /// The recorder's builtin filter.
    Builtin,
    /// A filter file (absolute path) with the text to load instead of the file's bytes.
    File { path: PathBuf, text: String },
}

/// One code object to decide: what a recorded filter decision was made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub filename: String,
    /// The module name the filters judged (`None`: none).
    pub module_name: Option<String>,
    pub qualname: String,
}

/// What the engine decided for a [`Query`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub exec: Exec,
    /// The last matching rule (spec F5; its value settings are in force): (source index in
    /// the chain, rule index in its source).
    pub rule: Option<(usize, usize)>,
    /// The last matching rule that sets `exec` (the one behind the trace/skip decision).
    pub exec_rule: Option<(usize, usize)>,
    /// What `file:` selectors test for this code object (spec F5).
    pub file_subject: Option<String>,
    /// What `obj:` selectors test (spec F4.4).
    pub object_name: Option<String>,
}

/// The filter engine, offline: loads a chain from texts and decides queries.
pub trait FilterEngine {
    /// The builtin filter's text (its rules can be copied, never edited).
    fn builtin_text(&self) -> &str;
    /// Loads `chain` (in chain order) and decides every query; `Err` is the loader's
    /// message (a file that is not a valid filter).
    fn evaluate(&self, chain: &[ChainText], queries: &[Query]) -> Result<Vec<Verdict>, String>;
}

/// Why fix-filters cannot start: bad evidence or a filter file it cannot read (status 2).
#[derive(Debug)]
pub struct FixError(pub String);

impl std::fmt::Display for FixError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One distinct filter decision change (the same code object in several runs counts once).
#[derive(Clone, Debug)]
pub struct Change {
    pub filename: String,
    pub qualname: String,
    pub legacy_name: Option<String>,
    pub globals_name: Option<String>,
    /// The decision both engines should reach: the legacy name's, under today's filters.
    pub target: Exec,
    /// The runs it was recorded in.
    pub runs: BTreeSet<String>,
    /// The chain it was decided with (sources, as recorded).
    chain: usize,
    /// What fixes it, when something does.
    pub fix: Result<usize, String>,
    /// After the edit: `None` fixed, else why it remains.
    pub remains: Option<String>,
}

/// One proposed rule.
#[derive(Clone, Debug)]
pub struct Proposal {
    /// The filter file (absolute path).
    pub file: PathBuf,
    /// The file as the diff shows it (relative to the directory the command ran in, when
    /// under it).
    pub shown: String,
    /// The rule it goes after (index in the file, as it is now) and that rule's selector.
    pub anchor: usize,
    pub anchor_selector: String,
    pub selector: String,
    pub exec: Exec,
    /// The builtin filter cannot be edited: this is advice, not part of the diff.
    pub advice_only: bool,
    /// The rule as TOML (for advice).
    pub toml: String,
    /// Why the rule is there (the comment above it).
    pub why: String,
}

/// Everything fix-filters found and would do.
pub struct FixPlan {
    pub changes: Vec<Change>,
    pub proposals: Vec<Proposal>,
    /// The edited filter files.
    pub change_set: ChangeSet,
    /// Records seen (with repetitions across runs) and runs read.
    pub records: usize,
    pub runs: usize,
    pub notes: Vec<String>,
}

impl FixPlan {
    /// Changes that remain after the edit.
    pub fn remaining(&self) -> usize {
        self.changes.iter().filter(|c| c.remains.is_some()).count()
    }
}

/// A chain as a run recorded it: source names in order, and which is the builtin.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ChainKey(Vec<(String, bool)>);

const BUILTIN: &str = "<builtin>";

/// What makes two records the same change: the chain, the code object (file, qualname) and
/// the two judged names.
type ChangeKey = (usize, String, String, Option<String>, Option<String>);

/// Builds the plan from the evidence: the records, the proposals, the edited files and the
/// re-evaluation. Reads the filter files; writes nothing. `root` is the directory the diff's
/// paths are shown relative to (files outside it are shown with their absolute path).
pub fn plan(
    evidence: &Evidence,
    engine: &dyn FilterEngine,
    root: &Path,
) -> Result<FixPlan, FixError> {
    if evidence.runs.is_empty() {
        return Err(FixError(
            "fix-filters needs run directories: the records of filter decision changes \
             (shadow/divergences.ndjson) are only there, Prometheus counts them without names"
                .to_owned(),
        ));
    }
    let mut notes = Vec::new();
    let mut chains: Vec<ChainKey> = Vec::new();
    let mut changes: Vec<Change> = Vec::new();
    let mut records = 0;
    let mut index: BTreeMap<ChangeKey, usize> = BTreeMap::new();
    for run in &evidence.runs {
        let chain = chain_of(run, &mut notes);
        let chain_index = match chains.iter().position(|c| *c == chain) {
            Some(i) => i,
            None => {
                chains.push(chain);
                chains.len() - 1
            }
        };
        let logged = run
            .divergences
            .iter()
            .filter(|d| d.kind == DivergenceKind::FilterDecisionChanged)
            .count() as u64;
        let counted = run.summary.filter_decision_changes.trace_to_skip
            + run.summary.filter_decision_changes.skip_to_trace;
        if counted > logged {
            notes.push(format!(
                "run {}: {counted} filter decision changes counted, {logged} in its log: \
                 the others cannot be fixed from this evidence (record again)",
                run.label()
            ));
        }
        for d in &run.divergences {
            if d.kind != DivergenceKind::FilterDecisionChanged {
                continue;
            }
            let (Some(lf), Some(gf)) = (&d.legacy().filter, &d.globals().filter) else {
                continue;
            };
            if lf.exec == gf.exec {
                continue;
            }
            records += 1;
            if lf.module_name.is_none() && gf.module_name.is_none() && d.schema.ends_with("/v1") {
                notes.push(format!(
                    "run {}: a schema v1 record ({} {}) has no judged names; record again",
                    run.label(),
                    d.filename,
                    d.qualname
                ));
                continue;
            }
            let key = (
                chain_index,
                d.filename.clone(),
                d.qualname.clone(),
                lf.module_name.clone(),
                gf.module_name.clone(),
            );
            let i = *index.entry(key).or_insert_with(|| {
                changes.push(Change {
                    filename: d.filename.clone(),
                    qualname: d.qualname.clone(),
                    legacy_name: lf.module_name.clone(),
                    globals_name: gf.module_name.clone(),
                    target: lf.exec,
                    runs: BTreeSet::new(),
                    chain: chain_index,
                    fix: Err(String::new()),
                    remains: None,
                });
                changes.len() - 1
            });
            changes[i].runs.insert(run.label());
        }
    }

    // The filter files, as they are now.
    let mut files: BTreeMap<PathBuf, String> = BTreeMap::new();
    for chain in &chains {
        for (source, builtin) in &chain.0 {
            if *builtin {
                continue;
            }
            let path = PathBuf::from(source);
            if files.contains_key(&path) {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| {
                FixError(format!(
                    "the filter file {source} (in the runs' filter chain) cannot be read: {e}"
                ))
            })?;
            FilterDoc::parse(&text).map_err(|e| {
                FixError(format!("the filter file {source} is not valid TOML: {e}"))
            })?;
            files.insert(path, text);
        }
    }
    // A file edited since a run (by hand, or by an earlier --write) is judged as it is now.
    let mut changed: BTreeSet<(String, String)> = BTreeSet::new();
    for run in &evidence.runs {
        for s in &run.summary.run.meta.filter_chain {
            let Some(text) = files.get(Path::new(&s.source)) else {
                continue;
            };
            let now = format!("{:x}", sha2::Sha256::digest(text.as_bytes()));
            if now != s.sha256 {
                changed.insert((s.source.clone(), run.label()));
            }
        }
    }
    for (source, run) in changed {
        notes.push(format!(
            "{source} changed since run {run}: its records are judged with the file as it is now"
        ));
    }
    FilterDoc::parse(engine.builtin_text())
        .map_err(|e| FixError(format!("the builtin filter: {e}")))?;

    // Today's decisions under both names.
    let mut proposals: Vec<Proposal> = Vec::new();
    for (chain_index, chain) in chains.iter().enumerate() {
        let texts = chain_texts(chain, &files, &BTreeMap::new());
        let mine: Vec<usize> = (0..changes.len())
            .filter(|&i| changes[i].chain == chain_index)
            .collect();
        let queries = queries_of(&changes, &mine);
        let verdicts = engine.evaluate(&texts, &queries).map_err(FixError)?;
        for (k, &i) in mine.iter().enumerate() {
            let (vl, vg) = (&verdicts[2 * k], &verdicts[2 * k + 1]);
            let change = &mut changes[i];
            change.target = vl.exec;
            if vl.exec == vg.exec {
                change.fix = Err("no longer changes with the filters as they are now".into());
                continue;
            }
            change.fix = propose(
                change,
                vl,
                vg,
                chain,
                &files,
                engine.builtin_text(),
                root,
                &mut proposals,
            );
        }
    }
    // Build each edited file once, with its proposals in order.
    let mut edited: BTreeMap<PathBuf, String> = BTreeMap::new();
    for (path, text) in &files {
        let mut doc = FilterDoc::parse(text).map_err(FixError)?;
        let mut any = false;
        for p in proposals
            .iter()
            .filter(|p| !p.advice_only && &p.file == path)
        {
            let template = rule_table(p);
            doc.insert_after(p.anchor, template, &p.why);
            any = true;
        }
        if any {
            edited.insert(path.clone(), doc.render());
        }
    }

    // Re-evaluate every change with the edited chain.
    for (chain_index, chain) in chains.iter().enumerate() {
        let texts = chain_texts(chain, &files, &edited);
        let mine: Vec<usize> = (0..changes.len())
            .filter(|&i| changes[i].chain == chain_index)
            .collect();
        let queries = queries_of(&changes, &mine);
        let verdicts = engine.evaluate(&texts, &queries).map_err(|e| {
            FixError(format!(
                "the edited filter does not load (a bug, please report): {e}"
            ))
        })?;
        for (k, &i) in mine.iter().enumerate() {
            let (vl, vg) = (&verdicts[2 * k], &verdicts[2 * k + 1]);
            let change = &mut changes[i];
            change.remains = if vl.exec == change.target && vg.exec == change.target {
                None
            } else if vl.exec != change.target {
                Some(format!(
                    "the edit would change the legacy name's decision to {}",
                    vl.exec.as_str()
                ))
            } else {
                Some(match &change.fix {
                    Err(why) => why.clone(),
                    Ok(_) => format!(
                        "after the edit the globals name is still decided by {}",
                        describe_rule(vg.rule, chain)
                    ),
                })
            };
        }
    }

    let mut change_set = ChangeSet::new(root);
    for (path, text) in &edited {
        change_set
            .write(&display_path(root, path), text.as_bytes())
            .map_err(|e| FixError(e.to_string()))?;
    }
    Ok(FixPlan {
        changes,
        proposals,
        change_set,
        records,
        runs: evidence.runs.len(),
        notes,
    })
}

/// The chain a run recorded in its summary; older runs: the builtin and the files their
/// records name, in the order first seen (noted).
fn chain_of(run: &RunReport, notes: &mut Vec<String>) -> ChainKey {
    let recorded = &run.summary.run.meta.filter_chain;
    if !recorded.is_empty() {
        return ChainKey(
            recorded
                .iter()
                .map(|s| (s.source.clone(), s.builtin))
                .collect(),
        );
    }
    let mut chain = vec![(BUILTIN.to_owned(), true)];
    for d in &run.divergences {
        for f in [&d.primary.filter, &d.shadow.filter].into_iter().flatten() {
            if let Some(r) = &f.rule {
                let builtin = r.source == BUILTIN;
                if !chain.iter().any(|(s, _)| *s == r.source) {
                    chain.push((r.source.clone(), builtin));
                }
            }
        }
    }
    if run
        .divergences
        .iter()
        .any(|d| d.kind == DivergenceKind::FilterDecisionChanged)
    {
        notes.push(format!(
            "run {}: its summary does not list the filter chain (an older recorder): \
             assumed the builtin filter and the files its records name",
            run.label()
        ));
    }
    ChainKey(chain)
}

fn chain_texts(
    chain: &ChainKey,
    files: &BTreeMap<PathBuf, String>,
    edited: &BTreeMap<PathBuf, String>,
) -> Vec<ChainText> {
    chain
        .0
        .iter()
        .map(|(source, builtin)| {
            if *builtin {
                ChainText::Builtin
            } else {
                let path = PathBuf::from(source);
                let text = edited
                    .get(&path)
                    .or_else(|| files.get(&path))
                    .cloned()
                    .unwrap_or_default();
                ChainText::File { path, text }
            }
        })
        .collect()
}

/// Two queries per change: its legacy name, then its globals name.
fn queries_of(changes: &[Change], which: &[usize]) -> Vec<Query> {
    which
        .iter()
        .flat_map(|&i| {
            let c = &changes[i];
            [&c.legacy_name, &c.globals_name].map(|name| Query {
                filename: c.filename.clone(),
                module_name: name.clone(),
                qualname: c.qualname.clone(),
            })
        })
        .collect()
}

fn describe_rule(rule: Option<(usize, usize)>, chain: &ChainKey) -> String {
    match rule {
        None => "the chain's default".to_owned(),
        Some((source, index)) => {
            let name = chain.0.get(source).map_or("?", |(s, _)| s.as_str());
            format!("rule #{index} of {name}")
        }
    }
}

/// The rule table of a proposal: a copy of the rule whose decision is kept (when it was
/// found) with the new selector and exec.
fn rule_table(p: &Proposal) -> toml_edit::Table {
    let parsed: toml_edit::DocumentMut = p.toml.parse().expect("built by propose()");
    parsed["scope"]["rules"]
        .as_array_of_tables()
        .and_then(|a| a.get(0))
        .cloned()
        .expect("one rule")
}

/// Chooses the edit for one change (see the module docs); `Ok` is the proposal's index.
#[allow(clippy::too_many_arguments)]
fn propose(
    change: &Change,
    vl: &Verdict,
    vg: &Verdict,
    chain: &ChainKey,
    files: &BTreeMap<PathBuf, String>,
    builtin_text: &str,
    root: &Path,
    proposals: &mut Vec<Proposal>,
) -> Result<usize, String> {
    // The later deciding rule in chain order is the anchor (None: the chain default).
    let (anchor, anchor_is_legacy) = match (vl.rule, vg.rule) {
        (Some(l), Some(g)) if g > l => (g, false),
        (Some(l), _) => (l, true),
        (None, Some(g)) => (g, false),
        (None, None) => return Err("both names were decided by the chain default".into()),
    };
    let doc_of = |source: usize| -> Option<FilterDoc> {
        let (name, builtin) = chain.0.get(source)?;
        if *builtin {
            FilterDoc::parse(builtin_text).ok()
        } else {
            FilterDoc::parse(files.get(Path::new(name))?).ok()
        }
    };
    let anchor_doc = doc_of(anchor.0).ok_or("the deciding rule's filter is not in the chain")?;
    let anchor_selector = anchor_doc
        .selector(anchor.1)
        .ok_or_else(|| format!("rule #{} is not in its filter file any more", anchor.1))?;
    // The selector to adapt: the rule that set the decision being kept (case A: legacy's) or
    // overridden (case B: globals'), which may come before the anchor when the last match
    // sets no `exec` (a catch-all with value patterns, say).
    let basis_rule = if anchor_is_legacy {
        vl.exec_rule
    } else {
        vg.exec_rule
    };
    let basis = basis_rule
        .and_then(|(s, r)| doc_of(s)?.selector(r))
        .unwrap_or_else(|| anchor_selector.clone());
    let kind = basis.split(':').next().unwrap_or("").to_owned();
    let main_like = matches!(change.globals_name.as_deref(), None | Some("__main__"));
    let selector = if kind == "obj" {
        let Some(globals_obj) = vg.object_name.as_ref().filter(|_| !main_like) else {
            return Err(format!(
                "the rule `{basis}` names an object, and under the globals engine this \
                 code's module is `{}`: a selector cannot combine a file and an object; \
                 split the rule by hand (e.g. a `file:` rule for the script)",
                change.globals_name.as_deref().unwrap_or("<none>")
            ));
        };
        anchor_is_legacy
            .then(|| rewrite_prefix(&basis, vl.object_name.as_deref(), globals_obj))
            .flatten()
            .unwrap_or_else(|| format!("obj:literal:{globals_obj}"))
    } else if main_like {
        // `pkg:__main__` would match every script: select this one by its path.
        let Some(path) = &vg.file_subject else {
            return Err("the code object has no file path to select".into());
        };
        format!("file:literal:{path}")
    } else {
        let globals = change.globals_name.clone().unwrap_or_default();
        (anchor_is_legacy && kind == "pkg")
            .then(|| rewrite_prefix(&basis, change.legacy_name.as_deref(), &globals))
            .flatten()
            .unwrap_or_else(|| format!("pkg:literal:{globals}"))
    };
    // The rule whose decision (and value settings) is kept: R_L, when a rule decided.
    let template = vl.rule.and_then(|(s, i)| doc_of(s)?.rule(i));
    let exec = change.target;
    let mut table = edit::new_rule(template, &selector, exec.as_str());
    if !anchor_is_legacy {
        // The copied reason was the legacy-deciding rule's; this rule's is the exception.
        table.insert(
            "reason",
            toml_edit::value(format!(
                "exception to `{basis}`: the decision the legacy name `{}` gets",
                change.legacy_name.as_deref().unwrap_or("<none>")
            )),
        );
    }
    let mut one = toml_edit::DocumentMut::new();
    let mut rules = toml_edit::ArrayOfTables::new();
    rules.push(table);
    let mut scope = toml_edit::Table::new();
    scope.set_implicit(true);
    scope.insert("rules", toml_edit::Item::ArrayOfTables(rules));
    one.insert("scope", toml_edit::Item::Table(scope));
    let toml = one.to_string();
    let (file_name, builtin) = &chain.0[anchor.0];
    let legacy = change.legacy_name.as_deref().unwrap_or("<none>");
    let globals = change.globals_name.as_deref().unwrap_or("<none>");
    let why = if anchor_is_legacy {
        format!(
            "Added by `ct-rollout fix-filters`: `{basis}` decides ({}) for the\n\
             legacy module name `{legacy}`; the globals engine (ADR 0016) names the same\n\
             code `{globals}`, which this selector matches.",
            exec.as_str()
        )
    } else {
        format!(
            "Added by `ct-rollout fix-filters`: `{basis}` did not match the legacy\n\
             module name `{legacy}`, but matches the globals engine's `{globals}` (ADR 0016);\n\
             this exception keeps the decision the legacy name gets ({}).",
            exec.as_str()
        )
    };
    let proposal = Proposal {
        shown: display_path(root, Path::new(file_name)),
        file: PathBuf::from(file_name),
        anchor: anchor.1,
        anchor_selector: anchor_selector.clone(),
        selector,
        exec,
        advice_only: *builtin,
        toml,
        why,
    };
    let advice_only = proposal.advice_only;
    let i = match proposals.iter().position(|p| {
        p.file == proposal.file && p.anchor == proposal.anchor && p.selector == proposal.selector
    }) {
        Some(i) => i,
        None => {
            proposals.push(proposal);
            proposals.len() - 1
        }
    };
    if !advice_only {
        return Ok(i);
    }
    // An advice-only proposal does not fix anything by itself: the change remains.
    let decider = vl
        .exec_rule
        .and_then(|(s, r)| Some(format!("`{}`", doc_of(s)?.selector(r)?)))
        .unwrap_or_else(|| "default".to_owned());
    Err(format!(
        "decided by the builtin filter (rule {decider} for the legacy name), which is never \
         edited: add the rule shown under \"for your project filter\" to the project's \
         .codetracer/trace-filter.toml"
    ))
}

/// `kind:match:pattern` with the legacy name's extra prefix rewritten to the globals name's:
/// when `legacy` = X + S and `globals` = Y + S (S their longest common suffix, at a dot) and
/// the pattern starts with X, the pattern becomes Y + the rest. Globs and literals only.
fn rewrite_prefix(selector: &str, legacy: Option<&str>, globals: &str) -> Option<String> {
    let legacy = legacy?;
    let mut parts = selector.splitn(3, ':');
    let kind = parts.next()?;
    let second = parts.next()?;
    let (match_type, pattern) = match parts.next() {
        Some(p) => (second, p),
        None => ("glob", second),
    };
    if match_type == "regex" {
        return None;
    }
    // The longest common suffix that starts at a segment boundary of both names.
    let common = common_dotted_suffix(legacy, globals);
    let x = &legacy[..legacy.len() - common.len()];
    let y = &globals[..globals.len() - common.len()];
    if x.is_empty() || !pattern.starts_with(x) {
        return None;
    }
    let new_pattern = format!("{y}{}", &pattern[x.len()..]);
    if new_pattern.is_empty() {
        return None;
    }
    Some(format!("{kind}:{match_type}:{new_pattern}"))
}

/// The longest suffix of both names that is whole segments (`shop.pricing` for
/// `src.shop.pricing` and `shop.pricing`).
fn common_dotted_suffix<'a>(a: &'a str, b: &str) -> &'a str {
    let sa: Vec<&str> = a.split('.').collect();
    let sb: Vec<&str> = b.split('.').collect();
    let n = sa
        .iter()
        .rev()
        .zip(sb.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    if n == 0 {
        return "";
    }
    let start = a.len() - sa[sa.len() - n..].iter().map(|s| s.len()).sum::<usize>() - (n - 1);
    &a[start..]
}

/// `path` relative to `root` when under it, else absolute.
fn display_path(root: &Path, path: &Path) -> String {
    match path.strip_prefix(root) {
        Ok(rel) => rel.to_string_lossy().into_owned(),
        Err(_) => path.to_string_lossy().into_owned(),
    }
}

/// The report fix-filters prints: the changes, the proposals, the diff and the count.
pub fn render(plan: &FixPlan, write: bool) -> String {
    let mut out = String::new();
    let distinct = plan.changes.len();
    let _ = writeln!(
        out,
        "ct-rollout fix-filters: {} filter decision change record(s), {distinct} distinct, in {} run(s)",
        plan.records, plan.runs
    );
    for n in &plan.notes {
        let _ = writeln!(out, "note: {n}");
    }
    if distinct == 0 {
        let _ = writeln!(out, "nothing to fix");
        return out;
    }
    let _ = writeln!(out);
    for c in &plan.changes {
        let _ = writeln!(
            out,
            "- {} {}: legacy `{}` -> {}, globals `{}` -> {}",
            c.filename,
            c.qualname,
            c.legacy_name.as_deref().unwrap_or("<none>"),
            c.target.as_str(),
            c.globals_name.as_deref().unwrap_or("<none>"),
            other(c.target).as_str(),
        );
        if let Ok(i) = &c.fix {
            let p = &plan.proposals[*i];
            let _ = writeln!(
                out,
                "    fix: after `{}` in {}, add `{}` (exec = \"{}\")",
                p.anchor_selector,
                p.shown,
                p.selector,
                p.exec.as_str()
            );
        }
        match (&c.fix, &c.remains) {
            (_, Some(why)) => {
                let _ = writeln!(out, "    not fixed: {why}");
            }
            (Err(why), None) => {
                let _ = writeln!(out, "    ok: {why}");
            }
            (Ok(_), None) => {}
        }
    }
    let advice: Vec<&Proposal> = plan.proposals.iter().filter(|p| p.advice_only).collect();
    if !advice.is_empty() {
        let _ = writeln!(
            out,
            "\nfor your project filter (.codetracer/trace-filter.toml; the builtin filter is never edited):"
        );
        for p in advice {
            out.push_str(&p.toml);
        }
    }
    if !plan.change_set.is_empty() {
        let _ = writeln!(out);
        out.push_str(&plan.change_set.diff());
    }
    let remaining = plan.remaining();
    let _ = writeln!(
        out,
        "\nre-evaluated offline with the edited filters: {remaining} of {distinct} filter decision change(s) remain"
    );
    for c in plan.changes.iter().filter(|c| c.remains.is_some()) {
        let _ = writeln!(
            out,
            "  remains: {} {}: {}",
            c.filename,
            c.qualname,
            c.remains.as_deref().unwrap_or_default()
        );
    }
    if !write && !plan.change_set.is_empty() {
        let _ = writeln!(
            out,
            "ct-rollout: nothing was changed (dry run): run again with --write to apply"
        );
    }
    out
}

fn other(e: Exec) -> Exec {
    match e {
        Exec::Trace => Exec::Skip,
        Exec::Skip => Exec::Trace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_suffix_is_whole_segments() {
        assert_eq!(
            common_dotted_suffix("src.shop.pricing", "shop.pricing"),
            "shop.pricing"
        );
        assert_eq!(common_dotted_suffix("a.xshop", "shop"), "");
        assert_eq!(common_dotted_suffix("pkg.cli", "__main__"), "");
    }

    #[test]
    fn prefixes_are_rewritten_only_when_the_pattern_has_them() {
        assert_eq!(
            rewrite_prefix("pkg:src.shop.*", Some("src.shop.pricing"), "shop.pricing").as_deref(),
            Some("pkg:glob:shop.*")
        );
        assert_eq!(
            rewrite_prefix(
                "pkg:literal:src.shop.pricing",
                Some("src.shop.pricing"),
                "shop.pricing"
            )
            .as_deref(),
            Some("pkg:literal:shop.pricing")
        );
        assert_eq!(
            rewrite_prefix("pkg:*.pricing", Some("src.shop.pricing"), "shop.pricing"),
            None
        );
        assert_eq!(
            rewrite_prefix(
                "pkg:regex:^src\\.",
                Some("src.shop.pricing"),
                "shop.pricing"
            ),
            None
        );
    }
}
