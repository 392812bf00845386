//! Trace filters (spec Part F, docs/trace-filters.md).
//!
//! A [`FilterChain`] is loaded once per session ([`FilterChain::load`]): the builtin filter,
//! the project's `.codetracer/trace-filter.toml`, then explicit files. For each new code
//! object the tracer:
//!
//! 1. asks the **naming engine** for a module name and turns it into the name the filters see
//!    ([`legacy_filter_module_name`] or [`globals_filter_module_name`]) — the filter engine
//!    never derives module names itself;
//! 2. builds the [`ScopeContext`] ([`FilterChain::scope_context`]);
//! 3. evaluates it ([`FilterChain::evaluate`]) and caches the [`Decision`] per code object;
//! 4. on every recorded value, asks [`Decision::value_action`].
//!
//! [`FilterChain::explain`] tells why; [`FilterChain::summary`] is what goes into
//! `trace_metadata.json`.

mod builtin;
mod chain;
mod error;
mod eval;
mod explain;
mod load;
mod model;
mod names;
mod offline;
mod scope;
mod selector;
mod summary;
mod values;

pub use builtin::{BUILTIN_NAME, BUILTIN_TOML};
pub use chain::{FilterChain, FilterSource, ScopeRule, SourceOrigin};
pub use error::{FilterError, FilterErrorKind};
pub use eval::{Decision, MatchedRule};
pub use explain::{ExplainStep, Explanation};
pub use load::{
    discover_project_filter, project_root_of, split_path_list, ChainBuilder, LoadOptions, ENV_VAR,
    PATH_LIST_SEPARATOR, PROJECT_FILTER_RELATIVE_PATH,
};
pub use model::{
    Exec, FilterMeta, IoConfig, IoStream, MatchType, ScopeKind, SelectorKind, ValueAction,
    ValueKind,
};
pub use names::{
    globals_filter_module_name, is_synthetic_filename, is_valid_dotted_name,
    legacy_filter_module_name, normalize_posix, relative_path_to_dotted,
};
pub use offline::OfflineEngine;
pub use scope::ScopeContext;
pub use selector::Selector;
pub use summary::{FilterSummary, SourceSummary};
pub use values::{PatternSet, ValuePattern};
