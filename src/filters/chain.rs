//! The loaded chain (spec F1): sources in chain order, their rules flattened into one list,
//! the defaults in force and the `[io]` section in force.

use super::model::{Exec, FilterMeta, IoConfig, ScopeKind, ValueAction};
use super::selector::Selector;
use super::values::PatternSet;
use serde::Serialize;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// One source of the chain: the builtin filter, the discovered project filter, or an explicit
/// file.
#[derive(Debug, Clone)]
pub struct FilterSource {
    pub(crate) name: String,
    pub(crate) path: Option<PathBuf>,
    pub(crate) project_root: PathBuf,
    pub(crate) sha256: String,
    pub(crate) meta: FilterMeta,
    pub(crate) rule_count: usize,
    pub(crate) origin: SourceOrigin,
}

/// How a source entered the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceOrigin {
    /// The embedded builtin filter.
    Builtin,
    /// `.codetracer/trace-filter.toml` found walking up from the program's directory.
    Discovered,
    /// An entry of `CODETRACER_TRACE_FILTER`.
    Env,
    /// A `--trace-filter` entry.
    Cli,
    /// Added through [`ChainBuilder::inline`](super::ChainBuilder::inline) or
    /// [`ChainBuilder::file`](super::ChainBuilder::file).
    Api,
}

impl FilterSource {
    /// The path as the user gave it (used in errors), or `<builtin>` / the inline label.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The file's absolute path; `None` for the builtin and inline sources.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
    /// F1: the parent of the nearest `.codetracer` ancestor, else the file's directory; the
    /// builtin's root is the empty path.
    pub fn project_root(&self) -> &Path {
        &self.project_root
    }
    /// Lower-case hex SHA-256 of the source's bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
    pub fn meta(&self) -> &FilterMeta {
        &self.meta
    }
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }
    pub fn origin(&self) -> SourceOrigin {
        self.origin
    }
}

/// One `[[scope.rules]]` entry, flattened into the chain's rule list.
#[derive(Debug, Clone)]
pub struct ScopeRule {
    pub(crate) source: usize,
    pub(crate) index_in_source: usize,
    pub(crate) selector: Selector,
    pub(crate) scope_kind: ScopeKind,
    pub(crate) exec: Option<Exec>,
    pub(crate) value_default: Option<ValueAction>,
    pub(crate) reason: Option<Arc<str>>,
    pub(crate) patterns: Arc<PatternSet>,
}

impl ScopeRule {
    pub fn source_index(&self) -> usize {
        self.source
    }
    /// Position of the rule inside its own file (0-based).
    pub fn index_in_source(&self) -> usize {
        self.index_in_source
    }
    pub fn selector(&self) -> &Selector {
        &self.selector
    }
    pub fn scope_kind(&self) -> ScopeKind {
        self.scope_kind
    }
    /// `None` means `inherit` (or omitted).
    pub fn exec(&self) -> Option<Exec> {
        self.exec
    }
    /// `None` means `inherit` (or omitted).
    pub fn value_default(&self) -> Option<ValueAction> {
        self.value_default
    }
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }
    pub fn value_patterns(&self) -> &PatternSet {
        &self.patterns
    }
}

/// A loaded, compiled filter chain. Cheap to share (`Send + Sync`); build it once per session.
#[derive(Debug, Clone)]
pub struct FilterChain {
    pub(crate) sources: Vec<FilterSource>,
    pub(crate) rules: Vec<ScopeRule>,
    pub(crate) default_exec: Exec,
    pub(crate) default_exec_source: Option<usize>,
    pub(crate) default_value: ValueAction,
    pub(crate) default_value_source: Option<usize>,
    pub(crate) io: IoConfig,
    pub(crate) io_source: Option<usize>,
    pub(crate) empty_patterns: Arc<PatternSet>,
}

impl FilterChain {
    /// Sources in chain order.
    pub fn sources(&self) -> &[FilterSource] {
        &self.sources
    }
    /// All rules of all sources, in chain order.
    pub fn rules(&self) -> &[ScopeRule] {
        &self.rules
    }
    /// The chain's `default_exec` (the last source that does not inherit). With no source at
    /// all (builtin disabled, no file) it is `trace`.
    pub fn default_exec(&self) -> Exec {
        self.default_exec
    }
    /// The chain's `default_value_action` and the index of the source that set it. With no
    /// source at all it is `allow`, set by nobody.
    pub fn default_value_action(&self) -> (ValueAction, Option<usize>) {
        (self.default_value, self.default_value_source)
    }
    /// The `[io]` section in force (the last source that has one; default: no capture).
    pub fn io(&self) -> &IoConfig {
        &self.io
    }

    /// Spec F4.2: the relative path of a code object.
    ///
    /// Among all sources, the one whose project root is a component-wise prefix of
    /// `co_filename` leaving the fewest components wins (ties: the earlier source). The rest is
    /// normalised: `.` and the root are dropped, each `..` removes one earlier segment, and the
    /// segments are joined with `/`. Empty means no relative path.
    ///
    /// Quirk kept: the builtin's root is the empty path, a prefix of every path, so while the
    /// builtin is loaded every non-empty `co_filename` has a relative path; outside any project
    /// it is the path without its leading `/` (relative and synthetic filenames come back as
    /// they are, normalised).
    pub fn relative_path(&self, co_filename: &str) -> Option<String> {
        relative_path_among(
            self.sources.iter().map(|s| s.project_root.as_path()),
            co_filename,
        )
    }
}

pub(crate) fn relative_path_among<'a>(
    roots: impl Iterator<Item = &'a Path>,
    co_filename: &str,
) -> Option<String> {
    if co_filename.is_empty() {
        return None;
    }
    let target = Path::new(co_filename);
    let mut best: Option<(usize, &Path)> = None;
    for root in roots {
        if let Ok(rest) = target.strip_prefix(root) {
            let count = rest.components().count();
            let better = match best {
                None => true,
                Some((c, _)) => count < c,
            };
            if better {
                best = Some((count, rest));
            }
        }
    }
    let (_, rest) = best?;
    let mut segments: Vec<&str> = Vec::new();
    for component in rest.components() {
        match component {
            Component::Normal(part) => segments.push(part.to_str().unwrap_or_default()),
            Component::ParentDir => {
                segments.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    if segments.is_empty() {
        None
    } else {
        Some(segments.join("/"))
    }
}
