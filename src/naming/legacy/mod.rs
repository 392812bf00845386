//! The legacy engine (spec Part L): `sys.path` roots, filesystem heuristics and a
//! `sys.modules` scan keyed by the code object's file name.
//!
//! Compiled only with the `legacy-resolver` cargo feature. The recorder reaches it only
//! through [`ENGINE`], its [`LegacyEngine`](crate::naming::LegacyEngine) registered in
//! `naming/mod.rs`; deleting the legacy engine is deleting this directory, the feature and
//! that registration (`ct-rollout delete-legacy`).
//!
//! - [`paths`]: L1 helpers;
//! - [`roots`]: L2 session roots, L3 path candidate and heuristics;
//! - [`scan`]: L4, the reference scan and the cached scanner;
//! - [`pyscan`]: L4 over the real `sys.modules`: on 3.11 a walk of the dict's entry array
//!   that checks each entry's watched words; on 3.12+ `wscan`, kept up to date by the dict
//!   watcher, so a lookup reads only what changed since the last one;
//! - `watch` (3.12+): the dict watcher: counters the stamps of hook-free reads watch, and
//!   the log of changes `wscan` reads; every dict is unwatched when the session stops;
//! - [`LegacyResolver`]: L5 (path cache) over the above;
//! - [`LegacyNamer`]: the runtime engine, "L6 with no hints" (L7's decision);
//! - [`name_with_hints`]: L6 with hints, for completeness and tests;
//! - [`legacy_filter_module_name`]: the F4.3 module name used by legacy filter decisions.

/// The L1 helpers live in `naming::paths` (the filters use them too); re-exported here.
pub use crate::naming::paths;
mod multi;
pub mod pyscan;
pub mod roots;
pub mod scan;
#[cfg(Py_3_12)]
mod watch;
#[cfg(Py_3_12)]
mod wscan;

use pyo3::ffi;
use pyo3::prelude::*;
use rustc_hash::FxHashMap;

pub use roots::SysPathEntry;
pub use scan::ScanStats;

use super::{
    is_synthetic_filename, is_valid_dotted_name, CodeFacts, Engine, FallbackReason, ModuleNamer,
    ModuleTable, Naming,
};
use crate::naming::paths::{normalise, normalised, relative_to_dotted};
use scan::{reference_scan, ScanCache};

/// How many dicts the legacy engine's dict watcher watches now (CPython 3.12+; `None` on
/// 3.11, which has no dict watchers). Every watch is dropped when the last `sys.modules`
/// reader of the process goes (the session stops). For tests and diagnostics; GIL held.
pub fn watched_dict_count() -> Option<usize> {
    #[cfg(Py_3_12)]
    {
        Some(watch::watched_dicts())
    }
    #[cfg(not(Py_3_12))]
    {
        None
    }
}

/// How the resolver runs the L4 scan. Both give the same answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScanStrategy {
    /// Per-entry facts cached under entry identity and stamps ([`scan::ScanCache`]).
    #[default]
    Cached,
    /// Every entry read on every scan ([`scan::reference_scan`]).
    Reference,
}

/// Counters of one resolver (reported in `trace_metadata.json`).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LegacyStats {
    /// Calls to [`LegacyResolver::resolve`].
    pub lookups: u64,
    /// Lookups answered by the path cache (L5.1).
    pub path_cache_hits: u64,
    /// Scan counters.
    pub scan: ScanStats,
}

/// The legacy resolver: L2 roots taken once, L5 over L3 and L4.
pub struct LegacyResolver {
    roots: Vec<String>,
    path_cache: FxHashMap<String, String>,
    scan_cache: ScanCache,
    strategy: ScanStrategy,
    stats: LegacyStats,
}

impl LegacyResolver {
    /// A resolver from `sys.path` entries and the working directory (`None`: unknown), both
    /// as they were when the session started (L2).
    pub fn new(sys_path: &[SysPathEntry], cwd: Option<&str>) -> Self {
        LegacyResolver {
            roots: roots::session_roots(sys_path, cwd),
            path_cache: FxHashMap::default(),
            scan_cache: ScanCache::new(),
            strategy: ScanStrategy::default(),
            stats: LegacyStats::default(),
        }
    }

    /// A resolver from the running interpreter: `sys.path` (a list; anything else gives no
    /// entries) and `os.getcwd()` (an error gives an unknown cwd). Call it when the session
    /// starts, after `sys.path[0]` is set for the target.
    pub fn from_python(py: Python<'_>) -> Self {
        let mut entries = Vec::new();
        // SAFETY: GIL held; PySys_GetObject returns a borrowed reference (or null).
        unsafe {
            let path = ffi::PySys_GetObject(c"path".as_ptr());
            if !path.is_null() && ffi::PyList_Check(path) != 0 {
                let path = Bound::from_borrowed_ptr(py, path);
                // Copy first: reading entries runs no code, but be safe against aliasing.
                let items: Vec<Bound<'_, PyAny>> = path
                    .downcast::<pyo3::types::PyList>()
                    .map(|l| l.iter().collect())
                    .unwrap_or_default();
                for item in items {
                    entries.push(match super::python::str_text(item.as_ptr()) {
                        Some(text) => SysPathEntry::Str(text),
                        None => SysPathEntry::NotStr,
                    });
                }
            }
        }
        let cwd = py
            .import("os")
            .and_then(|os| os.call_method0("getcwd"))
            .and_then(|cwd| cwd.extract::<String>())
            .ok();
        Self::new(&entries, cwd.as_deref())
    }

    /// The roots, in L2 order.
    pub fn roots(&self) -> &[String] {
        &self.roots
    }

    /// Chooses how scans run (the default is [`ScanStrategy::Cached`]).
    pub fn set_scan_strategy(&mut self, strategy: ScanStrategy) {
        self.strategy = strategy;
        self.scan_cache.clear();
    }

    /// Counters.
    pub fn stats(&self) -> &LegacyStats {
        &self.stats
    }

    /// The name the path cache holds for a target, if any.
    pub fn cached_name(&self, target: &str) -> Option<&str> {
        self.path_cache.get(target).map(String::as_str)
    }

    /// L3: the path candidate of a (normalised) target. Reads the filesystem.
    pub fn path_candidate(&self, target: &str) -> Option<String> {
        roots::path_candidate(&self.roots, target)
    }

    /// L4: scans `modules` for a (normalised) target. The cached strategy uses the
    /// table's shared scanner when it has one, its own [`ScanCache`] otherwise.
    pub fn scan(&mut self, target: &str, modules: &dyn ModuleTable) -> Option<String> {
        match self.strategy {
            ScanStrategy::Cached => {
                match pyscan::shared_scan(modules, target, &mut self.stats.scan) {
                    Some(answer) => answer,
                    None => self.scan_cache.scan(target, modules, &mut self.stats.scan),
                }
            }
            ScanStrategy::Reference => reference_scan(target, modules, &mut self.stats.scan),
        }
    }

    /// L5: resolves a normalised target. Only names found in `sys.modules` are cached,
    /// forever; path-only names are recomputed on every call.
    ///
    /// L5.2 computes the path candidate before the scan, even when the scan is going to
    /// win. The candidate reads only the filesystem (marker files) and the scan only
    /// `sys.modules`, neither changes what the other sees, and no program code runs in
    /// between, so computing the candidate after a scan that found nothing gives the same
    /// answer while sparing the filesystem walk on every scan hit.
    pub fn resolve(&mut self, target: &str, modules: &dyn ModuleTable) -> Option<String> {
        self.stats.lookups += 1;
        if let Some(name) = self.path_cache.get(target) {
            self.stats.path_cache_hits += 1;
            return Some(name.clone());
        }
        if let Some(name) = self.scan(target, modules) {
            self.path_cache.insert(target.to_string(), name.clone());
            return Some(name);
        }
        self.path_candidate(target)
    }
}

/// L6.2: trimmed, and accepted only if a valid dotted name.
pub fn sanitise(value: &str) -> Option<String> {
    let trimmed = value.trim();
    is_valid_dotted_name(trimmed).then(|| trimmed.to_string())
}

/// The optional hints of L6.2.
#[derive(Debug, Default, Clone, Copy)]
pub struct Hints<'a> {
    pub preferred: Option<&'a str>,
    pub relative: Option<&'a str>,
    pub absolute: Option<&'a str>,
    pub globals: Option<&'a str>,
}

/// L6.3/L6.4: the per-code-object answer with hints (the caller caches it per code
/// object; the first answer is final).
pub fn name_with_hints(
    resolver: &mut LegacyResolver,
    hints: &Hints<'_>,
    co_filename: &str,
    modules: &dyn ModuleTable,
) -> Option<String> {
    let globals = hints.globals.and_then(sanitise);
    let mut name = hints
        .preferred
        .and_then(sanitise)
        .or_else(|| hints.relative.and_then(relative_to_dotted))
        .or_else(|| hints.absolute.and_then(|a| resolver.resolve(a, modules)))
        .or_else(|| globals.clone());
    if globals.as_deref() == Some("__main__") {
        name = Some("__main__".to_string());
    }
    if name.is_none() && hints.absolute.is_none() && co_filename.starts_with('/') {
        name = normalise(co_filename).and_then(|target| resolver.resolve(&target, modules));
    }
    name
}

/// F4.3: the module name legacy filter decisions used. `relative_path` is the filter
/// engine's F4.2 relative path, `absolute_path` the F4.1 normalised `co_filename` (which
/// may be relative or synthetic). The resolver runs for every call (functions included);
/// its answer replaces the relative path's name when there is none, when that name is not
/// a valid dotted name, or when the answer is `__main__` and that name has no `.`.
///
/// The filter engine must own its own [`LegacyResolver`] (L7: two resolvers, two caches).
pub fn legacy_filter_module_name(
    resolver: &mut LegacyResolver,
    relative_path: Option<&str>,
    absolute_path: &str,
    modules: &dyn ModuleTable,
) -> Option<String> {
    let first = relative_path.and_then(relative_to_dotted);
    let answer = resolver.resolve(absolute_path, modules);
    match (first, answer) {
        (None, answer) => answer,
        (Some(first), Some(answer))
            if !is_valid_dotted_name(&first) || (answer == "__main__" && !first.contains('.')) =>
        {
            Some(answer)
        }
        (Some(first), _) => Some(first),
    }
}

/// The legacy engine at runtime: L6 with no hints, i.e. L5 on the normalised
/// `co_filename` when it starts with `/` (L6.4, L7). Names every code object, functions
/// included (their label stays their qualname).
pub struct LegacyNamer {
    resolver: LegacyResolver,
}

impl LegacyNamer {
    /// An engine over a resolver built when the session started.
    pub fn new(resolver: LegacyResolver) -> Self {
        LegacyNamer { resolver }
    }

    /// The resolver (roots, stats).
    pub fn resolver(&self) -> &LegacyResolver {
        &self.resolver
    }

    /// The resolver, mutably.
    pub fn resolver_mut(&mut self) -> &mut LegacyResolver {
        &mut self.resolver
    }
}

impl ModuleNamer for LegacyNamer {
    fn engine(&self) -> Engine {
        Engine::Legacy
    }

    fn report(&self) -> Option<serde_json::Value> {
        serde_json::to_value(self.resolver.stats()).ok()
    }

    fn name(&mut self, facts: &CodeFacts, modules: &dyn ModuleTable) -> Naming {
        if !facts.filename.starts_with('/') {
            return Naming::fallback(if is_synthetic_filename(&facts.filename) {
                FallbackReason::SyntheticFilename
            } else {
                FallbackReason::RelativeFilename
            });
        }
        // Asked for every code object (functions too): an already-normal file name, the
        // usual case, is looked up as it is, without a copy.
        let resolved = normalised(&facts.filename).and_then(|t| self.resolver.resolve(&t, modules));
        match resolved {
            Some(name) => Naming::named(name),
            None => Naming::fallback(FallbackReason::Unresolved),
        }
    }
}

/// The legacy engine as the recorder sees it (registered in `naming/mod.rs`).
pub struct Legacy;

/// The registered instance.
pub static ENGINE: Legacy = Legacy;

impl crate::naming::LegacyEngine for Legacy {
    fn namer(&self, py: Python<'_>) -> Box<dyn ModuleNamer + Send> {
        Box::new(LegacyNamer::new(LegacyResolver::from_python(py)))
    }

    fn filter_namer(&self, py: Python<'_>) -> Box<dyn crate::naming::FilterModuleNamer + Send> {
        Box::new(FilterResolver {
            resolver: LegacyResolver::from_python(py),
            answers: FxHashMap::default(),
        })
    }

    fn session_roots(&self, py: Python<'_>) -> Vec<String> {
        LegacyResolver::from_python(py).roots().to_vec()
    }

    fn sys_modules_state(&self) -> Box<dyn crate::naming::SysModulesState> {
        Box::new(pyscan::PyScanner::default())
    }

    unsafe fn dict_change_word(&self, dict: *mut ffi::PyObject) -> Option<*const usize> {
        #[cfg(Py_3_12)]
        {
            watch::counter_of(dict)
        }
        #[cfg(not(Py_3_12))]
        {
            // 3.11 has no dict watchers; its version tags change on every mutation.
            let _ = dict;
            None
        }
    }
}

/// The filter engine's own resolver (spec L7), answering F4.3.
/// The filter engine's legacy resolver, with the F4.3 answer remembered per file once it
/// can no longer change.
struct FilterResolver {
    resolver: LegacyResolver,
    /// Absolute path -> (the relative path it was asked with, the F4.3 answer). Only
    /// answers whose resolver part came from the path cache are kept: the path cache is
    /// never invalidated (L5), and the rest of F4.3 is a function of the relative path, so
    /// such an answer is final. A file has one code object per function, each asking again.
    answers: FxHashMap<String, (Option<String>, Option<String>)>,
}

/// Past this many files the remembered answers start over (as the scope's path cache).
const FILTER_ANSWERS_LIMIT: usize = 1 << 16;

impl crate::naming::FilterModuleNamer for FilterResolver {
    fn filter_module_name(
        &mut self,
        relative: Option<&str>,
        absolute: &str,
        modules: &dyn ModuleTable,
    ) -> Option<String> {
        if let Some((rel, answer)) = self.answers.get(absolute) {
            if rel.as_deref() == relative {
                // What `resolve` would have counted: a lookup answered by the path cache.
                self.resolver.stats.lookups += 1;
                self.resolver.stats.path_cache_hits += 1;
                return answer.clone();
            }
        }
        let answer = legacy_filter_module_name(&mut self.resolver, relative, absolute, modules);
        if self.resolver.cached_name(absolute).is_some() {
            if self.answers.len() >= FILTER_ANSWERS_LIMIT {
                self.answers.clear();
            }
            self.answers.insert(
                absolute.to_string(),
                (relative.map(str::to_string), answer.clone()),
            );
        }
        answer
    }

    fn report(&self) -> Option<serde_json::Value> {
        serde_json::to_value(self.resolver.stats()).ok()
    }
}
