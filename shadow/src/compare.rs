//! The comparator: one [`Observation`] in, at most one [`Divergence`] out.
//!
//! Classification is a pure function of the observation. It looks the two results up by
//! *engine*, not by role, so swapping primary and shadow gives the same kind; only the two
//! error kinds (`primary_error`, `shadow_error`) depend on the role, because a failing
//! primary changes the recording and a failing shadow does not.

use serde::{Deserialize, Serialize};

use crate::model::{
    is_synthetic_filename, Engine, EngineResult, Exec, FilterOutcome, GlobalsName, Observation,
};
use crate::taxonomy::{DivergenceKind, Severity};

/// The `schema` value of every line of `divergences.ndjson`.
pub const DIVERGENCE_SCHEMA: &str = "ct-shadow/divergence/v2";

/// Every divergence schema a reader accepts: v1 records lack the filters' judged module
/// names (`filter.module_name` reads as `null`), otherwise they are v2 records.
pub const DIVERGENCE_SCHEMAS_READ: [&str; 2] = ["ct-shadow/divergence/v1", DIVERGENCE_SCHEMA];

/// Where the third opinion came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpinionSource {
    /// `__name__`, trimmed.
    GlobalsName,
    /// `__spec__.name`, because `__name__` was `__main__`.
    SpecName,
    /// The stem of `co_filename` (`tool` for `/srv/tool.py`).
    FileStem,
    /// None of the above was available (a synthetic filename and no usable `__name__`).
    None,
}

/// An engine-independent guess at the module's name: `__name__`; else `__spec__.name` when
/// `__name__` is `__main__`; else the file's stem. It lets a reader tell a legacy bug (the
/// globals engine agrees with it) from a regression of the globals engine (legacy agrees).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThirdOpinion {
    pub name: Option<String>,
    pub source: OpinionSource,
    /// Whether the globals engine's name equals `name`.
    pub matches_globals: bool,
    /// Whether the legacy engine's name equals `name`.
    pub matches_legacy: bool,
}

/// An engine result as stored in a divergence record (owned, so it can be read back).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineRecord {
    pub engine: Engine,
    pub name: Option<String>,
    pub fallback: Option<String>,
    pub filter: Option<FilterOutcome>,
    pub error: Option<String>,
    pub elapsed_ns: u64,
}

impl From<&EngineResult> for EngineRecord {
    fn from(r: &EngineResult) -> Self {
        EngineRecord {
            engine: r.engine,
            name: r.name.clone(),
            fallback: r.fallback.map(str::to_owned),
            filter: r.filter.clone(),
            error: r.error.clone(),
            elapsed_ns: r.elapsed_ns,
        }
    }
}

/// One divergent code object: a line of `shadow/divergences.ndjson`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    /// Always [`DIVERGENCE_SCHEMA`].
    pub schema: String,
    pub kind: DivergenceKind,
    pub severity: Severity,
    /// Whether ADR 0016 predicts this divergence. The kind's value, except for
    /// `filter_decision_changed`, which takes its cause's (no cause: yes, the legacy filter
    /// pipeline name going away, spec N.7).
    pub expected_by_adr: bool,
    /// For `filter_decision_changed`, `primary_error` and `shadow_error`: the name-based kind
    /// the names would have had on their own, when the names differ.
    pub cause: Option<DivergenceKind>,
    pub filename: String,
    pub qualname: String,
    pub is_module: bool,
    pub globals_name: GlobalsName,
    pub spec_name: Option<String>,
    /// Digest of the `sys.path` roots; the roots themselves are in `shadow/roots.json`.
    pub sys_path_roots: String,
    pub third_opinion: ThirdOpinion,
    pub primary: EngineRecord,
    pub shadow: EngineRecord,
    pub thread: u64,
    pub first_seen: f64,
}

impl Divergence {
    /// The globals engine's side (primary or shadow).
    pub fn globals(&self) -> &EngineRecord {
        if self.shadow.engine == Engine::Globals {
            &self.shadow
        } else {
            &self.primary
        }
    }

    /// The legacy engine's side (primary or shadow).
    pub fn legacy(&self) -> &EngineRecord {
        if self.primary.engine == Engine::Legacy {
            &self.primary
        } else {
            &self.shadow
        }
    }

    /// Classifies the stored facts again, offline: `Some((kind, cause))` as [`compare`] would
    /// give today, `None` if they would no longer count as a divergence.
    pub fn recheck(&self) -> Option<(DivergenceKind, Option<DivergenceKind>)> {
        classify(&Facts {
            filename: &self.filename,
            is_module: self.is_module,
            globals_name: &self.globals_name,
            spec_name: self.spec_name.as_deref(),
            primary: Side::from_record(&self.primary),
            shadow: Side::from_record(&self.shadow),
        })
    }
}

/// Compares the two engines' results for one code object.
///
/// Returns `None` when both engines produced the same name and, where both evaluated the
/// filters, the same trace/skip decision, and neither failed. Two engines that both found no
/// name do **not** agree: that is `both_unresolved`, a blind spot worth seeing.
///
/// Precedence, first match wins:
/// 1. `primary_error`, then `shadow_error` (an engine reported an error);
/// 2. `filter_decision_changed` (both filters evaluated, different `exec`);
/// 3. the names' kind:
///    1. `both_unresolved`;
///    2. `other` when the globals engine disagrees with `__name__` on a module body;
///    3. globals engine without a name: `globals_missing` / `globals_invalid` by what
///       `__name__` was (`other` if it was usable);
///    4. legacy without a name: `dynamic_module` for synthetic filenames, else
///       `legacy_unresolved`;
///    5. two different names: `dynamic_module` (synthetic filename), `runpy_alias` or
///       `main_script` (globals `__main__`, with or without `__spec__`), `runpy_alias`
///       (`<run_path>`), `runpy_alias` / `name_reassigned` (`__name__` differs from
///       `__spec__.name` on a module body / a function), `root_ambiguity` (one name a dotted
///       suffix of the other), `dynamic_module` (no `__spec__`), else `alias_import`.
pub fn compare(obs: &Observation) -> Option<Divergence> {
    let facts = Facts {
        filename: &obs.filename,
        is_module: obs.is_module,
        globals_name: &obs.globals_name,
        spec_name: obs.spec_name.as_deref(),
        primary: Side::from_result(&obs.primary),
        shadow: Side::from_result(&obs.shadow),
    };
    let (kind, cause) = classify(&facts)?;
    let (g, l) = facts.by_engine();
    let third = third_opinion(
        &obs.globals_name,
        obs.spec_name.as_deref(),
        &obs.filename,
        g.and_then(|s| s.name),
        l.and_then(|s| s.name),
    );
    Some(Divergence {
        schema: DIVERGENCE_SCHEMA.to_owned(),
        kind,
        severity: kind.severity(),
        expected_by_adr: record_expected(kind, cause),
        cause,
        filename: obs.filename.clone(),
        qualname: obs.qualname.clone(),
        is_module: obs.is_module,
        globals_name: obs.globals_name.clone(),
        spec_name: obs.spec_name.clone(),
        sys_path_roots: obs.sys_path_roots.clone(),
        third_opinion: third,
        primary: EngineRecord::from(&obs.primary),
        shadow: EngineRecord::from(&obs.shadow),
        thread: obs.thread_id,
        first_seen: obs.first_seen,
    })
}

fn record_expected(kind: DivergenceKind, cause: Option<DivergenceKind>) -> bool {
    match (kind, cause) {
        (DivergenceKind::FilterDecisionChanged, Some(c)) => c.expected_by_adr(),
        _ => kind.expected_by_adr(),
    }
}

/// The third opinion (see [`ThirdOpinion`]) for a code object, given both engines' names.
pub fn third_opinion(
    globals_name: &GlobalsName,
    spec_name: Option<&str>,
    filename: &str,
    globals_engine: Option<&str>,
    legacy_engine: Option<&str>,
) -> ThirdOpinion {
    let spec = spec_name.map(str::trim).filter(|s| !s.is_empty());
    let (name, source) = match globals_name.usable() {
        Some(n) if n != "__main__" => (Some(n.to_owned()), OpinionSource::GlobalsName),
        Some(_) if spec.is_some() => (spec.map(str::to_owned), OpinionSource::SpecName),
        _ => match file_stem(filename) {
            Some(stem) => (Some(stem.to_owned()), OpinionSource::FileStem),
            None => (None, OpinionSource::None),
        },
    };
    let matches = |engine: Option<&str>| name.is_some() && engine == name.as_deref();
    ThirdOpinion {
        matches_globals: matches(globals_engine),
        matches_legacy: matches(legacy_engine),
        name,
        source,
    }
}

/// The file name without its last extension; `None` for synthetic filenames.
fn file_stem(filename: &str) -> Option<&str> {
    if is_synthetic_filename(filename) {
        return None;
    }
    std::path::Path::new(filename.trim())
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
}

/// The part of an engine result classification looks at.
#[derive(Clone, Copy)]
struct Side<'a> {
    engine: Engine,
    name: Option<&'a str>,
    exec: Option<Exec>,
    failed: bool,
}

impl<'a> Side<'a> {
    fn from_result(r: &'a EngineResult) -> Self {
        Side {
            engine: r.engine,
            name: r.name.as_deref(),
            exec: r.filter.as_ref().map(|f| f.exec),
            failed: r.error.is_some(),
        }
    }

    fn from_record(r: &'a EngineRecord) -> Self {
        Side {
            engine: r.engine,
            name: r.name.as_deref(),
            exec: r.filter.as_ref().map(|f| f.exec),
            failed: r.error.is_some(),
        }
    }
}

struct Facts<'a> {
    filename: &'a str,
    is_module: bool,
    globals_name: &'a GlobalsName,
    spec_name: Option<&'a str>,
    primary: Side<'a>,
    shadow: Side<'a>,
}

impl<'a> Facts<'a> {
    /// (globals side, legacy side); `None` for an engine that is on neither side.
    fn by_engine(&self) -> (Option<Side<'a>>, Option<Side<'a>>) {
        let pick = |e: Engine| {
            [self.primary, self.shadow]
                .into_iter()
                .find(|s| s.engine == e)
        };
        (pick(Engine::Globals), pick(Engine::Legacy))
    }
}

fn classify(f: &Facts<'_>) -> Option<(DivergenceKind, Option<DivergenceKind>)> {
    use DivergenceKind as K;
    let names_agree = matches!((f.primary.name, f.shadow.name), (Some(a), Some(b)) if a == b);
    let cause = || (!names_agree).then(|| name_kind(f));
    if f.primary.failed {
        return Some((K::PrimaryError, cause()));
    }
    if f.shadow.failed {
        return Some((K::ShadowError, cause()));
    }
    if let (Some(a), Some(b)) = (f.primary.exec, f.shadow.exec) {
        if a != b {
            return Some((K::FilterDecisionChanged, cause()));
        }
    }
    if names_agree {
        return None;
    }
    Some((name_kind(f), None))
}

/// The kind of a name difference (the caller has checked that the names differ).
fn name_kind(f: &Facts<'_>) -> DivergenceKind {
    use DivergenceKind as K;
    let (Some(g), Some(l)) = f.by_engine() else {
        // Both sides run the same engine: a wiring mistake, nothing to explain it with.
        return if f.primary.name.is_none() && f.shadow.name.is_none() {
            K::BothUnresolved
        } else {
            K::Other
        };
    };
    let usable = f.globals_name.usable();
    let synthetic = is_synthetic_filename(f.filename);
    let spec = f.spec_name.map(str::trim).filter(|s| !s.is_empty());

    let (g_name, l_name) = match (g.name, l.name) {
        (None, None) => return K::BothUnresolved,
        // On a module body the globals engine must answer `__name__`, trimmed (spec N.1).
        // (For functions the recorder may keep the module's name, spec N.6.)
        _ if f.is_module && g.name != usable => return K::Other,
        (None, Some(_)) => {
            return match f.globals_name {
                GlobalsName::Missing | GlobalsName::NoGlobals => K::GlobalsMissing,
                GlobalsName::NotStr { .. } => K::GlobalsInvalid,
                GlobalsName::Str { .. } if usable.is_none() => K::GlobalsInvalid,
                GlobalsName::Str { .. } => K::Other,
            }
        }
        (Some(_), None) if synthetic => return K::DynamicModule,
        (Some(_), None) => return K::LegacyUnresolved,
        (Some(g), Some(l)) => (g, l),
    };

    if synthetic {
        return K::DynamicModule;
    }
    if g_name == "__main__" {
        return if spec.is_some() {
            K::RunpyAlias
        } else {
            K::MainScript
        };
    }
    if g_name == "<run_path>" {
        return K::RunpyAlias;
    }
    if let Some(s) = spec {
        if s != g_name && usable == Some(g_name) {
            return if f.is_module {
                K::RunpyAlias
            } else {
                K::NameReassigned
            };
        }
    }
    if is_dotted_suffix(g_name, l_name) || is_dotted_suffix(l_name, g_name) {
        return K::RootAmbiguity;
    }
    if spec.is_none() {
        return K::DynamicModule;
    }
    K::AliasImport
}

/// Whether `short` is `long` with one or more leading dotted segments removed.
fn is_dotted_suffix(long: &str, short: &str) -> bool {
    long.len() > short.len()
        && !short.is_empty()
        && long.ends_with(short)
        && long.as_bytes()[long.len() - short.len() - 1] == b'.'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RuleRef;
    use DivergenceKind as K;

    const ROOTS: &str = "3f2a9c0d11e4b7a5";

    /// An observation with globals as primary and legacy as shadow.
    fn obs(
        filename: &str,
        globals_name: GlobalsName,
        spec: Option<&str>,
        g: Option<&str>,
        l: Option<&str>,
    ) -> Observation {
        let engine = |e: Engine, n: Option<&str>| EngineResult {
            engine: e,
            name: n.map(str::to_owned),
            fallback: None,
            filter: None,
            error: None,
            elapsed_ns: 1_500,
        };
        Observation {
            filename: filename.to_owned(),
            qualname: "<module>".to_owned(),
            is_module: true,
            globals_name,
            spec_name: spec.map(str::to_owned),
            sys_path_roots: ROOTS.to_owned(),
            primary: engine(Engine::Globals, g),
            shadow: engine(Engine::Legacy, l),
            thread_id: 140_231_234,
            first_seen: 0.125,
        }
    }

    fn swapped(o: &Observation) -> Observation {
        let mut s = o.clone();
        std::mem::swap(&mut s.primary, &mut s.shadow);
        s
    }

    /// Classifies `o` and checks the properties every kind must have: same kind with the
    /// roles swapped, record round-trips through JSON, and an offline recheck agrees.
    fn kind_of(o: &Observation) -> Option<DivergenceKind> {
        let d = compare(o);
        let s = compare(&swapped(o));
        assert_eq!(d.as_ref().map(|d| d.kind), s.as_ref().map(|d| d.kind));
        if let Some(d) = &d {
            assert_eq!(d.schema, DIVERGENCE_SCHEMA);
            assert_eq!(d.severity, d.kind.severity());
            let json = serde_json::to_string(d).unwrap();
            let back: Divergence = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, d);
            assert_eq!(back.recheck(), Some((d.kind, d.cause)));
        }
        d.map(|d| d.kind)
    }

    #[test]
    fn same_name_same_decision_is_no_divergence() {
        let o = obs(
            "/srv/app/src/mypkg/core.py",
            GlobalsName::str("mypkg.core"),
            Some("mypkg.core"),
            Some("mypkg.core"),
            Some("mypkg.core"),
        );
        assert_eq!(kind_of(&o), None);
    }

    #[test]
    fn main_script_under_a_profiler() {
        // `python -m cProfile tool.py`: fresh `__main__` globals without a spec, legacy finds
        // no sys.modules entry for the file and names it from sys.path[0].
        let o = obs(
            "/home/ana/tools/tool.py",
            GlobalsName::str("__main__"),
            None,
            Some("__main__"),
            Some("tool"),
        );
        assert_eq!(kind_of(&o), Some(K::MainScript));
        let d = compare(&o).unwrap();
        assert_eq!(d.third_opinion.name.as_deref(), Some("tool"));
        assert_eq!(d.third_opinion.source, OpinionSource::FileStem);
        assert!(d.third_opinion.matches_legacy && !d.third_opinion.matches_globals);
        assert!(d.expected_by_adr);
        assert_eq!(d.severity, Severity::Low);
    }

    #[test]
    fn runpy_alias_for_dash_m() {
        let o = obs(
            "/srv/app/pkg/cli.py",
            GlobalsName::str("__main__"),
            Some("pkg.cli"),
            Some("__main__"),
            Some("pkg.cli"),
        );
        assert_eq!(kind_of(&o), Some(K::RunpyAlias));
        let d = compare(&o).unwrap();
        assert_eq!(d.third_opinion.name.as_deref(), Some("pkg.cli"));
        assert_eq!(d.third_opinion.source, OpinionSource::SpecName);
        assert!(d.third_opinion.matches_legacy);
    }

    #[test]
    fn runpy_alias_for_run_path_and_custom_run_name() {
        let run_path = obs(
            "/srv/app/jobs/nightly.py",
            GlobalsName::str("<run_path>"),
            None,
            Some("<run_path>"),
            Some("jobs.nightly"),
        );
        assert_eq!(kind_of(&run_path), Some(K::RunpyAlias));
        let run_module = obs(
            "/srv/app/jobs/nightly.py",
            GlobalsName::str("nightly_job"),
            Some("jobs.nightly"),
            Some("nightly_job"),
            Some("jobs.nightly"),
        );
        assert_eq!(kind_of(&run_module), Some(K::RunpyAlias));
    }

    #[test]
    fn root_ambiguity_for_src_layout() {
        let o = obs(
            "/srv/app/src/mypkg/core.py",
            GlobalsName::str("mypkg.core"),
            Some("mypkg.core"),
            Some("mypkg.core"),
            Some("src.mypkg.core"),
        );
        assert_eq!(kind_of(&o), Some(K::RootAmbiguity));
        let d = compare(&o).unwrap();
        assert!(d.third_opinion.matches_globals && !d.third_opinion.matches_legacy);
        assert_eq!(d.severity, Severity::Medium);
    }

    #[test]
    fn root_ambiguity_needs_a_whole_segment() {
        // `mod` vs `xmod`: a string suffix, not a dotted one.
        assert!(!is_dotted_suffix("pkg.xmod", "mod"));
        assert!(is_dotted_suffix("pkg.mod", "mod"));
        assert!(!is_dotted_suffix("mod", "mod"));
        let o = obs(
            "/srv/app/pkg/xmod.py",
            GlobalsName::str("mod"),
            Some("mod"),
            Some("mod"),
            Some("pkg.xmod"),
        );
        assert_eq!(kind_of(&o), Some(K::AliasImport));
    }

    #[test]
    fn alias_import_for_loader_chosen_name() {
        let o = obs(
            "/srv/app/plugins/report.py",
            GlobalsName::str("plugin_7"),
            Some("plugin_7"),
            Some("plugin_7"),
            Some("plugins.report"),
        );
        assert_eq!(kind_of(&o), Some(K::AliasImport));
    }

    #[test]
    fn dynamic_module_for_exec_string_and_hand_made_globals() {
        let exec_string = obs(
            "<string>",
            GlobalsName::str("jobs.gen"),
            None,
            Some("jobs.gen"),
            None,
        );
        assert_eq!(kind_of(&exec_string), Some(K::DynamicModule));
        let d = compare(&exec_string).unwrap();
        assert_eq!(d.third_opinion.source, OpinionSource::GlobalsName);
        // types.ModuleType("scratch") + exec(compile(src, real_path), m.__dict__): no spec.
        let hand_made = obs(
            "/srv/app/tools/scratch_impl.py",
            GlobalsName::str("scratch"),
            None,
            Some("scratch"),
            Some("tools.scratch_impl"),
        );
        assert_eq!(kind_of(&hand_made), Some(K::DynamicModule));
    }

    #[test]
    fn globals_missing() {
        let mut o = obs(
            "/srv/app/gen.py",
            GlobalsName::Missing,
            None,
            None,
            Some("gen"),
        );
        o.primary.fallback = Some(crate::fallback::GLOBALS_MISSING);
        assert_eq!(kind_of(&o), Some(K::GlobalsMissing));
        let d = compare(&o).unwrap();
        assert_eq!(d.primary.fallback.as_deref(), Some("globals_missing"));
        assert_eq!(d.third_opinion.name.as_deref(), Some("gen"));
        o.globals_name = GlobalsName::NoGlobals;
        assert_eq!(kind_of(&o), Some(K::GlobalsMissing));
    }

    #[test]
    fn globals_invalid_for_non_str_and_blank() {
        let not_str = obs(
            "/srv/app/gen.py",
            GlobalsName::NotStr {
                type_name: "int".into(),
            },
            None,
            None,
            Some("gen"),
        );
        assert_eq!(kind_of(&not_str), Some(K::GlobalsInvalid));
        let blank = obs(
            "/srv/app/gen.py",
            GlobalsName::str("  "),
            None,
            None,
            Some("gen"),
        );
        assert_eq!(kind_of(&blank), Some(K::GlobalsInvalid));
    }

    #[test]
    fn legacy_unresolved_for_relative_filename() {
        let o = obs(
            "app/main.py",
            GlobalsName::str("app.main"),
            Some("app.main"),
            Some("app.main"),
            None,
        );
        assert_eq!(kind_of(&o), Some(K::LegacyUnresolved));
    }

    #[test]
    fn both_unresolved_is_a_divergence() {
        let o = obs("<string>", GlobalsName::Missing, None, None, None);
        assert_eq!(kind_of(&o), Some(K::BothUnresolved));
        let d = compare(&o).unwrap();
        assert_eq!(d.third_opinion.name, None);
        assert_eq!(d.third_opinion.source, OpinionSource::None);
    }

    #[test]
    fn name_reassigned_in_a_function() {
        let mut o = obs(
            "/srv/app/pkg/compat.py",
            GlobalsName::str("compat"),
            Some("pkg.compat"),
            Some("compat"),
            Some("pkg.compat"),
        );
        o.is_module = false;
        o.qualname = "shim".into();
        assert_eq!(kind_of(&o), Some(K::NameReassigned));
    }

    #[test]
    fn filter_decision_changed_names_both_rules() {
        let mut o = obs(
            "/srv/app/src/mypkg/core.py",
            GlobalsName::str("mypkg.core"),
            Some("mypkg.core"),
            Some("mypkg.core"),
            Some("src.mypkg.core"),
        );
        o.primary.filter = Some(FilterOutcome {
            module_name: None,
            exec: Exec::Trace,
            rule: Some(RuleRef {
                source: "/srv/app/.codetracer/trace-filter.toml".into(),
                index: 7,
                selector: "pkg:glob:mypkg.*".into(),
            }),
        });
        o.shadow.filter = Some(FilterOutcome {
            module_name: None,
            exec: Exec::Skip,
            rule: None,
        });
        assert_eq!(kind_of(&o), Some(K::FilterDecisionChanged));
        let d = compare(&o).unwrap();
        assert_eq!(d.severity, Severity::High);
        assert_eq!(d.cause, Some(K::RootAmbiguity));
        assert!(d.expected_by_adr);
        let rule = d.globals().filter.as_ref().unwrap().rule.as_ref().unwrap();
        assert_eq!(rule.selector, "pkg:glob:mypkg.*");
        assert_eq!(d.legacy().filter.as_ref().unwrap().exec, Exec::Skip);
    }

    #[test]
    fn filter_decision_changed_with_equal_names_and_unexpected_cause() {
        let mut o = obs(
            "/srv/app/m.py",
            GlobalsName::str("m"),
            Some("m"),
            Some("m"),
            Some("m"),
        );
        let skip = FilterOutcome {
            module_name: None,
            exec: Exec::Skip,
            rule: None,
        };
        let trace = FilterOutcome {
            module_name: None,
            exec: Exec::Trace,
            rule: None,
        };
        o.primary.filter = Some(trace.clone());
        o.shadow.filter = Some(skip.clone());
        assert_eq!(kind_of(&o), Some(K::FilterDecisionChanged));
        assert_eq!(compare(&o).unwrap().cause, None);
        // Filters agree: nothing to report.
        o.shadow.filter = Some(trace);
        assert_eq!(kind_of(&o), None);
        // One side did not evaluate filters: not comparable, not a change.
        o.shadow.filter = None;
        assert_eq!(kind_of(&o), None);
        // A change caused by an unexplained name difference is not expected.
        let mut odd = obs(
            "/srv/app/m.py",
            GlobalsName::str("m"),
            Some("m"),
            None,
            Some("m"),
        );
        odd.primary.filter = Some(skip);
        odd.shadow.filter = Some(FilterOutcome {
            module_name: None,
            exec: Exec::Trace,
            rule: None,
        });
        let d = compare(&odd).unwrap();
        assert_eq!(
            (d.kind, d.cause),
            (K::FilterDecisionChanged, Some(K::Other))
        );
        assert!(!d.expected_by_adr);
    }

    #[test]
    fn shadow_error_and_primary_error_depend_on_role() {
        let mut o = obs(
            "/srv/app/m.py",
            GlobalsName::str("m"),
            Some("m"),
            Some("m"),
            None,
        );
        o.shadow.error = Some("sys.modules entry raised".into());
        assert_eq!(compare(&o).unwrap().kind, K::ShadowError);
        assert_eq!(compare(&o).unwrap().cause, Some(K::LegacyUnresolved));
        assert_eq!(compare(&swapped(&o)).unwrap().kind, K::PrimaryError);
        // An error is reported even when the names agree.
        o.shadow.name = Some("m".into());
        assert_eq!(compare(&o).unwrap().kind, K::ShadowError);
        assert_eq!(compare(&o).unwrap().cause, None);
    }

    #[test]
    fn other_when_globals_engine_contradicts_dunder_name() {
        let o = obs(
            "/srv/app/pkg/mod.py",
            GlobalsName::str("pkg.mod"),
            Some("pkg.mod"),
            None,
            Some("pkg.mod"),
        );
        assert_eq!(kind_of(&o), Some(K::Other));
        let d = compare(&o).unwrap();
        assert!(d.third_opinion.matches_legacy && !d.third_opinion.matches_globals);
        assert!(!d.expected_by_adr);
        let wrong = obs(
            "/srv/app/pkg/mod.py",
            GlobalsName::str("pkg.mod"),
            Some("pkg.mod"),
            Some("pkg.other"),
            Some("pkg.mod"),
        );
        assert_eq!(kind_of(&wrong), Some(K::Other));
    }

    #[test]
    fn globals_name_is_trimmed_like_the_engine() {
        let o = obs(
            "/srv/app/src/pkg/mod.py",
            GlobalsName::str(" pkg.mod\n"),
            Some("pkg.mod"),
            Some("pkg.mod"),
            Some("src.pkg.mod"),
        );
        assert_eq!(kind_of(&o), Some(K::RootAmbiguity));
        assert_eq!(
            compare(&o).unwrap().third_opinion.name.as_deref(),
            Some("pkg.mod")
        );
    }

    #[test]
    fn same_engine_on_both_sides_is_other() {
        let mut o = obs(
            "/srv/app/m.py",
            GlobalsName::str("m"),
            None,
            Some("m"),
            None,
        );
        o.shadow.engine = Engine::Globals;
        o.shadow.name = Some("n".into());
        assert_eq!(compare(&o).unwrap().kind, K::Other);
    }

    #[test]
    fn classification_ignores_timing_thread_and_roots() {
        let a = obs(
            "/srv/app/src/mypkg/core.py",
            GlobalsName::str("mypkg.core"),
            Some("mypkg.core"),
            Some("mypkg.core"),
            Some("src.mypkg.core"),
        );
        let mut b = a.clone();
        b.thread_id = 1;
        b.first_seen = 99.0;
        b.primary.elapsed_ns = 9_999_999;
        b.sys_path_roots = "other".into();
        assert_eq!(compare(&a).unwrap().kind, compare(&b).unwrap().kind);
    }

    #[test]
    fn every_kind_is_reachable() {
        // Guards the tests above: a kind nobody can produce would be dead taxonomy.
        let mut seen = std::collections::BTreeSet::new();
        let cases = [
            obs(
                "/a/tool.py",
                GlobalsName::str("__main__"),
                None,
                Some("__main__"),
                Some("tool"),
            ),
            obs(
                "/a/c.py",
                GlobalsName::str("__main__"),
                Some("p.c"),
                Some("__main__"),
                Some("p.c"),
            ),
            obs(
                "/a/src/p/m.py",
                GlobalsName::str("p.m"),
                Some("p.m"),
                Some("p.m"),
                Some("src.p.m"),
            ),
            obs(
                "/a/r.py",
                GlobalsName::str("x_1"),
                Some("x_1"),
                Some("x_1"),
                Some("plugins.r"),
            ),
            obs("<string>", GlobalsName::str("g"), None, Some("g"), None),
            obs("/a/g.py", GlobalsName::Missing, None, None, Some("g")),
            obs("/a/g.py", GlobalsName::str(""), None, None, Some("g")),
            obs(
                "a/g.py",
                GlobalsName::str("a.g"),
                Some("a.g"),
                Some("a.g"),
                None,
            ),
            obs("<string>", GlobalsName::Missing, None, None, None),
            obs("/a/m.py", GlobalsName::str("m"), Some("m"), None, Some("m")),
        ];
        for c in &cases {
            seen.insert(compare(c).unwrap().kind);
        }
        let mut f = cases[0].clone();
        f.is_module = false;
        f.globals_name = GlobalsName::str("compat");
        f.spec_name = Some("p.compat".into());
        f.primary.name = Some("compat".into());
        seen.insert(compare(&f).unwrap().kind);
        f.primary.filter = Some(FilterOutcome {
            module_name: None,
            exec: Exec::Trace,
            rule: None,
        });
        f.shadow.filter = Some(FilterOutcome {
            module_name: None,
            exec: Exec::Skip,
            rule: None,
        });
        seen.insert(compare(&f).unwrap().kind);
        f.shadow.error = Some("boom".into());
        seen.insert(compare(&f).unwrap().kind);
        f.primary.error = Some("boom".into());
        seen.insert(compare(&f).unwrap().kind);
        assert_eq!(seen.len(), DivergenceKind::ALL.len(), "{seen:?}");
    }
}
