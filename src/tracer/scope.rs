//! The scope of a code object: its filter module name, the filter decision, and the value
//! policy counters. Computed once per code object, at its first sight.
//!
//! The module name that `pkg` and `obj` selectors see is an input from a naming engine,
//! never derived by the filter engine itself:
//! - legacy: the F4.3 composition (project-relative name, replaced by the legacy
//!   resolver's answer in the cases the spec lists), with the filter engine's own resolver
//!   (the reference had two resolvers, one for filters and one for labels, spec L7);
//! - globals: N5 (`__name__` when it is a valid dotted name, else the validated
//!   project-relative name, else the walk up `__init__.py` directories). For function code
//!   the `__name__` is the one in the function's globals when it first runs.

use std::collections::{BTreeMap, HashMap};

use runtime_tracing::{TypeKind, ValueRecord};
use serde::Serialize;

use crate::filters::{
    globals_filter_module_name, Decision, FilterChain, ScopeContext, ValueAction, ValueKind,
};
use crate::naming::{CodeFacts, Engine, FilterModuleNamer, GlobalsName, ModuleTable};
use crate::writer::TraceBuilder;

pub struct Scoping {
    pub chain: FilterChain,
    /// The filter engine's own legacy resolver (only when a legacy name is needed).
    pub legacy_filter: Option<Box<dyn FilterModuleNamer + Send>>,
    pub values: ValueCounters,
    pub skipped_by_filter: u64,
    /// `co_filename` → its F4.1 absolute and F4.2 relative paths. Both depend only on the
    /// filename and the chain, and one file has many code objects, each decided once per
    /// engine: the path work (`Path::strip_prefix` and `components()` per filter source,
    /// thousands of instructions) is done once per file instead.
    paths: HashMap<Box<str>, FilePaths>,
}

/// The paths of one `co_filename` (see [`Scoping::decide`]).
struct FilePaths {
    absolute: Option<String>,
    relative: Option<String>,
}

/// Past this many distinct filenames the cache starts over (a program that `exec`s code
/// under ever new names must not grow it without bound).
const PATH_CACHE_LIMIT: usize = 1 << 16;

impl Scoping {
    pub fn new(chain: FilterChain) -> Self {
        Scoping {
            chain,
            legacy_filter: None,
            values: ValueCounters::default(),
            skipped_by_filter: 0,
            paths: HashMap::new(),
        }
    }

    /// The module name `engine` gives the filters for this code object.
    pub fn filter_module_name(
        &mut self,
        engine: Engine,
        facts: &CodeFacts,
        relative: Option<&str>,
        absolute: &str,
        modules: &dyn ModuleTable,
    ) -> Option<String> {
        match engine {
            Engine::Globals => {
                let dunder = match &facts.globals_name {
                    GlobalsName::Str(s) => Some(s.as_str()),
                    _ => None,
                };
                globals_filter_module_name(dunder, relative, absolute)
            }
            Engine::Legacy => self
                .legacy_filter
                .as_mut()
                .and_then(|namer| namer.filter_module_name(relative, absolute, modules)),
        }
    }

    /// Scope context and decision for a code object under `engine`'s names.
    pub fn decide(
        &mut self,
        engine: Engine,
        facts: &CodeFacts,
        modules: &dyn ModuleTable,
    ) -> (ScopeContext, Decision) {
        if !self.paths.contains_key(facts.filename.as_str()) {
            if self.paths.len() >= PATH_CACHE_LIMIT {
                self.paths.clear();
            }
            let paths = FilePaths {
                absolute: crate::filters::normalize_posix(&facts.filename),
                relative: self.chain.relative_path(&facts.filename),
            };
            self.paths.insert(facts.filename.as_str().into(), paths);
        }
        let paths = &self.paths[facts.filename.as_str()];
        let (absolute, relative) = (paths.absolute.clone(), paths.relative.clone());
        let module = self.filter_module_name(
            engine,
            facts,
            relative.as_deref(),
            absolute.as_deref().unwrap_or_default(),
            modules,
        );
        let ctx = ScopeContext::from_paths(
            &facts.filename,
            absolute,
            relative,
            module.as_deref(),
            &facts.qualname,
        );
        let decision = self.chain.evaluate(&ctx);
        (ctx, decision)
    }
}

/// Values redacted and dropped by the value policies, per value kind.
#[derive(Default, Debug, Clone, Serialize)]
pub struct ValueCounters {
    pub redacted: BTreeMap<&'static str, u64>,
    pub dropped: BTreeMap<&'static str, u64>,
}

pub fn kind_name(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Local => "local",
        ValueKind::Global => "global",
        ValueKind::Arg => "arg",
        ValueKind::Return => "ret",
        ValueKind::Attr => "attr",
    }
}

impl ValueCounters {
    /// Counts a redacted or dropped value; an allowed one (every argument and return of a
    /// run without value filters) costs one compare on the hot path.
    #[inline(always)]
    pub fn count(&mut self, kind: ValueKind, action: ValueAction) {
        if action != ValueAction::Allow {
            self.count_filtered(kind, action);
        }
    }

    #[cold]
    #[inline(never)]
    fn count_filtered(&mut self, kind: ValueKind, action: ValueAction) {
        let map = match action {
            ValueAction::Allow => return,
            ValueAction::Redact => &mut self.redacted,
            ValueAction::Drop => &mut self.dropped,
        };
        *map.entry(kind_name(kind)).or_default() += 1;
    }
}

/// What a redacted value is recorded as.
pub fn redacted(b: &mut TraceBuilder) -> ValueRecord {
    let type_id = b.type_id(TypeKind::Raw, "<redacted>");
    ValueRecord::Raw {
        r: "<redacted>".into(),
        type_id,
    }
}

/// What a dropped return value is recorded as (the return event itself stays, F6).
pub fn dropped(b: &mut TraceBuilder) -> ValueRecord {
    let type_id = b.type_id(TypeKind::Raw, "<dropped>");
    ValueRecord::Raw {
        r: "<dropped>".into(),
        type_id,
    }
}
