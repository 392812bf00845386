//! What the recorder hands to the comparator: the facts about one code object and what each
//! engine made of them.
//!
//! These types are plain data. They are filled once per code object (at its first sight) on
//! the recorder side; nothing here touches Python.

use serde::{Deserialize, Serialize};

/// A module-naming engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// ADR 0016: `frame.f_globals["__name__"]`.
    Globals,
    /// The legacy resolver (spec Part L, L6 without hints).
    Legacy,
}

impl Engine {
    /// Both engines, in label order.
    pub const ALL: [Engine; 2] = [Engine::Globals, Engine::Legacy];

    /// The label value used in metrics and files.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Globals => "globals",
            Engine::Legacy => "legacy",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The other engine.
    pub fn other(self) -> Engine {
        match self {
            Engine::Globals => Engine::Legacy,
            Engine::Legacy => Engine::Globals,
        }
    }
}

/// `frame.f_globals["__name__"]` as the recorder found it, before any engine interpreted it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum GlobalsName {
    /// A `str` (or subclass), untrimmed, exactly as found.
    Str { value: String },
    /// The globals had no `__name__` key.
    Missing,
    /// `__name__` was bound to something that is not a `str`.
    NotStr { type_name: String },
    /// The frame's globals could not be read at all.
    NoGlobals,
}

impl GlobalsName {
    /// Shorthand for [`GlobalsName::Str`].
    pub fn str(value: impl Into<String>) -> Self {
        GlobalsName::Str {
            value: value.into(),
        }
    }

    /// The name the globals engine is expected to use (spec Part N.1): a `str` that is
    /// non-empty after trimming, trimmed.
    pub fn usable(&self) -> Option<&str> {
        match self {
            GlobalsName::Str { value } => {
                let t = value.trim();
                (!t.is_empty()).then_some(t)
            }
            _ => None,
        }
    }
}

/// A filter's execution decision for a code object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exec {
    Trace,
    Skip,
}

impl Exec {
    pub const ALL: [Exec; 2] = [Exec::Trace, Exec::Skip];

    pub fn as_str(self) -> &'static str {
        match self {
            Exec::Trace => "trace",
            Exec::Skip => "skip",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// The rule that decided a filter outcome (spec F5: the last matching rule).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRef {
    /// The filter source: a file path, or `builtin`.
    pub source: String,
    /// The rule's 0-based index among the `[[scope.rules]]` of its source (`source` and
    /// `index` locate the rule to edit).
    pub index: usize,
    /// The rule's selector as written, e.g. `pkg:glob:mypkg.*`.
    pub selector: String,
}

/// A filter decision and the rule behind it (`None` = the chain default decided).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterOutcome {
    pub exec: Exec,
    pub rule: Option<RuleRef>,
    /// The module name the filters judged (`pkg:` rules test it; spec F4.3 for legacy, N5
    /// for globals). For legacy it comes from the filter engine's own resolver (spec L7), so
    /// it can differ from the label name: `src.shop.pricing` judged, `shop.pricing` named.
    /// `None`: no module name (or a record of schema v1, which did not carry it).
    #[serde(default)]
    pub module_name: Option<String>,
}

/// What one engine produced for one code object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineResult {
    pub engine: Engine,
    /// The module name, or `None` when the engine has none (label `<module>`).
    pub name: Option<String>,
    /// Why the engine did not take its main path, when it did not. Use the constants in
    /// [`crate::fallback`]; other values are counted under the `other` label.
    pub fallback: Option<&'static str>,
    /// The filter decision this engine's name leads to, when filters were evaluated.
    pub filter: Option<FilterOutcome>,
    /// The engine failed (an error or a caught panic); the text is for humans.
    pub error: Option<String>,
    /// Time spent by the engine (naming and its filter evaluation), in nanoseconds.
    pub elapsed_ns: u64,
}

impl EngineResult {
    /// A successful result with a name and nothing else set.
    pub fn named(engine: Engine, name: impl Into<String>) -> Self {
        EngineResult {
            engine,
            name: Some(name.into()),
            fallback: None,
            filter: None,
            error: None,
            elapsed_ns: 0,
        }
    }

    /// A result without a name.
    pub fn unnamed(engine: Engine) -> Self {
        EngineResult {
            engine,
            name: None,
            fallback: None,
            filter: None,
            error: None,
            elapsed_ns: 0,
        }
    }
}

/// One code object seen by both engines: the input of [`crate::compare()`].
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// `co_filename` as found.
    pub filename: String,
    /// `co_qualname` (`<module>` for module bodies).
    pub qualname: String,
    /// Whether the code object is a module body.
    pub is_module: bool,
    /// `__name__` in the frame's globals, as found.
    pub globals_name: GlobalsName,
    /// `__spec__.name` in the frame's globals, when `__spec__` exists, is not `None` and its
    /// `name` is a `str` (read without running hooks).
    pub spec_name: Option<String>,
    /// The digest of the `sys.path` roots snapshot the legacy engine used
    /// (see [`crate::roots_digest`]).
    pub sys_path_roots: String,
    /// The engine whose answer is recorded.
    pub primary: EngineResult,
    /// The engine run for comparison only.
    pub shadow: EngineResult,
    /// The OS thread id that first ran the code object.
    pub thread_id: u64,
    /// Seconds since the run started, at first sight.
    pub first_seen: f64,
}

/// Fallback reasons the metrics know by name (label `reason`). Engines should report one of
/// these; anything else is counted as `other`.
pub mod fallback {
    /// Globals engine: no `__name__` key in the globals.
    pub const GLOBALS_MISSING: &str = "globals_missing";
    /// Globals engine: `__name__` is not a `str`.
    pub const GLOBALS_NOT_STR: &str = "globals_not_str";
    /// Globals engine: `__name__` is blank after trimming.
    pub const GLOBALS_BLANK: &str = "globals_blank";
    /// Globals engine: the frame's globals could not be read.
    pub const NO_GLOBALS: &str = "no_globals";
    /// Globals engine, filters (spec N.5): `__name__` not a valid dotted name, the
    /// project-relative name was used.
    pub const PROJECT_RELATIVE: &str = "project_relative";
    /// Globals engine, filters (spec N.5): name from the walk up `__init__.py` directories.
    pub const INIT_WALK: &str = "init_walk";
    /// Legacy engine: no `sys.modules` entry matched, the name came from the path (L5.4).
    pub const PATH_CANDIDATE: &str = "path_candidate";
    /// Legacy engine: the heuristic root (markers, L3.4) produced the name.
    pub const HEURISTIC_ROOT: &str = "heuristic_root";
    /// Legacy engine: relative `co_filename`, left unresolved (L6.4).
    pub const RELATIVE_FILENAME: &str = "relative_filename";
    /// Legacy engine: a `sys.modules` attribute could only come from a hook (L4.7).
    pub const HOOK_ATTRIBUTE: &str = "hook_attribute";
    /// Any reason not listed above.
    pub const OTHER: &str = "other";

    /// Every reason label value, `other` last.
    pub const ALL: [&str; 11] = [
        GLOBALS_MISSING,
        GLOBALS_NOT_STR,
        GLOBALS_BLANK,
        NO_GLOBALS,
        PROJECT_RELATIVE,
        INIT_WALK,
        PATH_CANDIDATE,
        HEURISTIC_ROOT,
        RELATIVE_FILENAME,
        HOOK_ATTRIBUTE,
        OTHER,
    ];

    /// Index of `reason` in [`ALL`], unknown reasons mapping to `other`.
    pub(crate) fn index(reason: &str) -> usize {
        ALL.iter()
            .position(|r| *r == reason)
            .unwrap_or(ALL.len() - 1)
    }
}

/// Whether a `co_filename` is synthetic (`<string>`, `<frozen os>`, `<stdin>`) or empty, that
/// is, names no file. Same test as the shared gate of spec F7.
pub fn is_synthetic_filename(filename: &str) -> bool {
    let t = filename.trim();
    t.is_empty() || (t.starts_with('<') && t.ends_with('>'))
}
