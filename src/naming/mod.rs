//! Module-naming engines. See `docs/module-naming.md`.
//!
//! Two engines answer the same question — "what module does this code object belong to?" —
//! from the same [`CodeFacts`], gathered once per code object by the tracer:
//!
//! - [`globals::GlobalsNamer`] (ADR 0016, spec Part N): the trimmed `__name__` found in the
//!   frame's globals when a `<module>` code object first starts;
//! - `legacy::LegacyNamer` (spec Part L, cargo feature `legacy-resolver`): the legacy
//!   resolver, i.e. `sys.path` roots, filesystem heuristics and a `sys.modules` scan keyed
//!   by the code object's file name.
//!
//! The [`ModuleTable`] abstraction stands for `sys.modules` at the moment of a lookup. Only
//! the legacy engine reads it; [`PySysModules`] reads the real one without running any
//! Python code, [`MemTable`] is an in-memory table for tests and benchmarks.

use pyo3::Python;

pub mod globals;
mod memory;
pub mod paths;
mod python;
mod table;

pub use globals::GlobalsNamer;
pub use memory::{MemObject, MemTable, MemValue};
pub use python::{
    read_attr_hook_free, read_globals_facts, read_module_attrs_hook_free, Moment, PySysModules,
};
pub use table::{
    AttrValue, EntryId, EntryRead, ModuleEntry, ModuleTable, ObjectAttrs, SpecValue, Stamp,
};

/// Facts about one code object, gathered ONCE by the tracer at its first start, shared by
/// both engines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeFacts {
    /// `co_filename` exactly as the code object has it.
    pub filename: String,
    /// `co_qualname`.
    pub qualname: String,
    /// `qualname == "<module>"`.
    pub is_module: bool,
    /// `frame.f_globals["__name__"]` as found.
    pub globals_name: GlobalsName,
    /// `f_globals["__spec__"].name` if a non-empty `str`, read hook-free.
    pub spec_name: Option<String>,
}

impl CodeFacts {
    /// Facts for a code object, `is_module` derived from the qualname.
    pub fn new(
        filename: impl Into<String>,
        qualname: impl Into<String>,
        globals_name: GlobalsName,
        spec_name: Option<String>,
    ) -> Self {
        let qualname = qualname.into();
        CodeFacts {
            filename: filename.into(),
            is_module: qualname == MODULE_QUALNAME,
            qualname,
            globals_name,
            spec_name,
        }
    }
}

/// The qualname CPython gives to the body of a module.
pub const MODULE_QUALNAME: &str = "<module>";

/// What `f_globals["__name__"]` held when the code object first started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobalsName {
    /// A `str` (or a subclass), raw and untrimmed.
    Str(String),
    /// The globals have no `__name__` key.
    Missing,
    /// `__name__` is bound to something that is not a `str`.
    NotStr {
        /// `type(value).__name__`, for the divergence log (never a metric label).
        type_name: String,
    },
    /// The frame has no globals at all.
    NoGlobals,
}

/// Which engine produced a [`Naming`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    /// `__name__` from the frame globals (ADR 0016).
    Globals,
    /// The legacy resolver (spec Part L).
    Legacy,
}

impl Engine {
    /// Stable lower-case name, used as a metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Globals => "globals",
            Engine::Legacy => "legacy",
        }
    }
}

/// Why an engine gave no name to a code object it was expected to name. A bounded set:
/// the values become Prometheus label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FallbackReason {
    /// Globals engine: the globals have no `__name__`.
    Missing,
    /// Globals engine: `__name__` is not a `str`.
    NotStr,
    /// Globals engine: `__name__` is empty or whitespace only.
    Empty,
    /// Globals engine: the frame has no globals.
    NoGlobals,
    /// Legacy engine: `co_filename` is absolute but neither `sys.modules` nor the path
    /// rules produced a name.
    Unresolved,
    /// Legacy engine: `co_filename` does not start with `/` (L6.4 leaves it unresolved).
    RelativeFilename,
    /// Legacy engine: `co_filename` is synthetic (`<string>`, `<frozen ...>`), a special
    /// case of a relative file name, counted apart because it is expected.
    SyntheticFilename,
}

impl FallbackReason {
    /// Every reason, for registering metric series up front.
    pub const ALL: [FallbackReason; 7] = [
        FallbackReason::Missing,
        FallbackReason::NotStr,
        FallbackReason::Empty,
        FallbackReason::NoGlobals,
        FallbackReason::Unresolved,
        FallbackReason::RelativeFilename,
        FallbackReason::SyntheticFilename,
    ];

    /// Stable snake_case name, used as a metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FallbackReason::Missing => "missing",
            FallbackReason::NotStr => "not_str",
            FallbackReason::Empty => "empty",
            FallbackReason::NoGlobals => "no_globals",
            FallbackReason::Unresolved => "unresolved",
            FallbackReason::RelativeFilename => "relative_filename",
            FallbackReason::SyntheticFilename => "synthetic_filename",
        }
    }
}

/// An engine's answer for one code object.
///
/// - `name: Some(_)`: the module name (`fallback` is then `None`);
/// - `name: None, fallback: Some(reason)`: the engine tried and found nothing;
/// - `name: None, fallback: None`: the engine does not name this kind of code object (the
///   globals engine and function code objects, see `docs/module-naming.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naming {
    pub name: Option<String>,
    pub fallback: Option<FallbackReason>,
}

impl Naming {
    /// A successful answer.
    pub fn named(name: impl Into<String>) -> Self {
        Naming {
            name: Some(name.into()),
            fallback: None,
        }
    }

    /// No name, for the given reason.
    pub fn fallback(reason: FallbackReason) -> Self {
        Naming {
            name: None,
            fallback: Some(reason),
        }
    }

    /// No name, and none was expected.
    pub fn not_applicable() -> Self {
        Naming {
            name: None,
            fallback: None,
        }
    }

    /// The runtime label of the code object (L6.5, N1): `<NAME>` for `<module>` code with a
    /// name, `<module>` for `<module>` code without one; other code objects keep their
    /// qualname. The name is not validated, so `<<run_path>>` is a possible label.
    pub fn label(&self, is_module: bool, qualname: &str) -> String {
        if !is_module {
            return qualname.to_string();
        }
        match &self.name {
            Some(name) => format!("<{name}>"),
            None => MODULE_QUALNAME.to_string(),
        }
    }
}

/// A module-naming engine.
pub trait ModuleNamer {
    /// Which engine this is.
    fn engine(&self) -> Engine;
    /// Called once per code object (the caller caches per code object, keeping code objects
    /// alive).
    fn name(&mut self, facts: &CodeFacts, modules: &dyn ModuleTable) -> Naming;
    /// The engine's own counters, for `trace_metadata.json` (the legacy resolver's
    /// lookups, path-cache hits and scan counters).
    fn report(&self) -> Option<serde_json::Value> {
        None
    }
}

// Registration point of the legacy engine: these three items, `legacy/` and the cargo
// feature are all there is of it.
#[cfg(feature = "legacy-resolver")]
pub mod legacy;
#[cfg(feature = "legacy-resolver")]
const LEGACY: Option<&dyn LegacyEngine> = Some(&legacy::ENGINE);
#[cfg(not(feature = "legacy-resolver"))]
const LEGACY: Option<&dyn LegacyEngine> = None;

/// The legacy engine this build has, if any (see the module documentation).
#[inline]
pub fn legacy_engine() -> Option<&'static dyn LegacyEngine> {
    LEGACY
}

/// What the recorder needs from the legacy engine (spec Part L). Its one implementation is
/// in `legacy/`; everything else reaches the engine through this trait.
pub trait LegacyEngine: Sync {
    /// The label engine for a session, built when it starts (after `sys.path[0]` is set
    /// for the target): L2 roots are taken then.
    fn namer(&self, py: Python<'_>) -> Box<dyn ModuleNamer + Send>;
    /// The filter engine's own resolver (spec L7: two resolvers, two caches), giving the
    /// F4.3 module name of legacy filter decisions.
    fn filter_namer(&self, py: Python<'_>) -> Box<dyn FilterModuleNamer + Send>;
    /// The session's `sys.path` roots as the legacy resolver sees them (L2).
    fn session_roots(&self, py: Python<'_>) -> Vec<String>;
    /// The state the engine keeps beside one reader of the real `sys.modules` and shares
    /// between every resolver reading it (the incremental scanner).
    fn sys_modules_state(&self) -> Box<dyn SysModulesState>;
    /// A word of memory that changes whenever `dict` is mutated, for the stamps of
    /// hook-free reads (3.12+: the engine's dict watcher counts the dict's events there);
    /// `None`: the reader falls back to the dict's version tag.
    ///
    /// # Safety
    /// `dict` is a live dict and the GIL is held. The word stays valid while `dict` lives.
    unsafe fn dict_change_word(&self, dict: *mut pyo3::ffi::PyObject) -> Option<*const usize>;
}

/// The module name a filter engine's decisions use, from an engine's own resolver.
pub trait FilterModuleNamer {
    /// `relative` is the filter engine's F4.2 relative path, `absolute` the F4.1
    /// normalised `co_filename`.
    fn filter_module_name(
        &mut self,
        relative: Option<&str>,
        absolute: &str,
        modules: &dyn ModuleTable,
    ) -> Option<String>;
    /// The resolver's counters, for `trace_metadata.json`.
    fn report(&self) -> Option<serde_json::Value>;
}

/// Engine state kept by a [`PySysModules`] (see [`LegacyEngine::sys_modules_state`]).
pub trait SysModulesState: Send {
    /// Drops every cached reference (end of a session).
    fn release(&mut self);
    /// A naming moment opens ([`PySysModules::moment`]).
    fn begin_moment(&mut self);
    /// The naming moment closes.
    fn end_moment(&mut self);
    /// For the engine to reach its own type.
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any;
}

/// A valid dotted name: non-empty segments separated by `.`, each made only of ASCII
/// letters, ASCII digits and `_` (a segment may start with a digit).
///
/// One pass over the bytes (it runs for every entry the legacy scan reads and every file a
/// legacy filter names): a `.` is valid only after a segment byte, and the name must end in
/// one.
pub fn is_valid_dotted_name(name: &str) -> bool {
    let mut after_dot = true;
    for &b in name.as_bytes() {
        if b == b'.' {
            if after_dot {
                return false;
            }
            after_dot = true;
        } else if b == b'_' || b.is_ascii_alphanumeric() {
            after_dot = false;
        } else {
            return false;
        }
    }
    !after_dot
}

/// Synthetic file names (F7): once trimmed, they start with `<` and end with `>`.
pub fn is_synthetic_filename(filename: &str) -> bool {
    let trimmed = filename.trim();
    trimmed.starts_with('<') && trimmed.ends_with('>')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_wraps_module_names_and_keeps_function_qualnames() {
        let named = Naming::named("pkg.mod");
        assert_eq!(named.label(true, "<module>"), "<pkg.mod>");
        assert_eq!(named.label(false, "Klass.method"), "Klass.method");
        let none = Naming::fallback(FallbackReason::Missing);
        assert_eq!(none.label(true, "<module>"), "<module>");
        assert_eq!(
            Naming::named("<run_path>").label(true, "<module>"),
            "<<run_path>>"
        );
    }

    #[test]
    fn fallback_reasons_are_distinct_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for reason in FallbackReason::ALL {
            let s = reason.as_str();
            assert!(
                s.bytes().all(|b| b == b'_' || b.is_ascii_lowercase()),
                "{s}"
            );
            assert!(seen.insert(s), "duplicate {s}");
        }
        assert_eq!(Engine::Globals.as_str(), "globals");
        assert_eq!(Engine::Legacy.as_str(), "legacy");
    }

    #[test]
    fn valid_dotted_name_rules() {
        for ok in ["a", "a.b", "_x.y_1", "1abc.2", "A.B.C"] {
            assert!(is_valid_dotted_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "a.",
            ".a",
            "a..b",
            "my-mod",
            "é",
            "a b",
            "<run_path>",
        ] {
            assert!(!is_valid_dotted_name(bad), "{bad}");
        }
    }

    /// The one-pass check against the rule as written (split on `.`, every segment
    /// non-empty and made of `[A-Za-z0-9_]`), on every string of up to 5 bytes over an
    /// alphabet with each kind of byte.
    #[test]
    fn valid_dotted_name_agrees_with_its_definition_exhaustively() {
        fn by_definition(name: &str) -> bool {
            !name.is_empty()
                && name.split('.').all(|segment| {
                    !segment.is_empty()
                        && segment
                            .bytes()
                            .all(|b| b == b'_' || b.is_ascii_alphanumeric())
                })
        }
        let alphabet = ['a', 'Z', '0', '_', '.', '-', ' ', 'é'];
        let mut names = vec![String::new()];
        let mut checked = 0;
        for _ in 0..5 {
            let mut longer = Vec::new();
            for name in &names {
                assert_eq!(is_valid_dotted_name(name), by_definition(name), "{name:?}");
                checked += 1;
                for c in alphabet {
                    longer.push(format!("{name}{c}"));
                }
            }
            names = longer;
        }
        for name in &names {
            assert_eq!(is_valid_dotted_name(name), by_definition(name), "{name:?}");
            checked += 1;
        }
        assert_eq!(checked, (0..=5).map(|n| 8usize.pow(n)).sum::<usize>());
    }

    #[test]
    fn synthetic_filenames() {
        assert!(is_synthetic_filename("<string>"));
        assert!(is_synthetic_filename("  <frozen importlib._bootstrap> "));
        assert!(!is_synthetic_filename("/x/<string>"));
        assert!(!is_synthetic_filename("<string"));
    }
}
