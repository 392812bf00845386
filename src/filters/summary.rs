//! The chain summary recorded in `trace_metadata.json`.

use super::chain::{FilterChain, SourceOrigin};
use super::model::{Exec, IoConfig, ValueAction};
use serde::Serialize;

/// One source of the chain, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceSummary {
    /// Absolute path of the file, or `<builtin>` (or an inline source's name).
    pub path: String,
    pub origin: SourceOrigin,
    /// Lower-case hex SHA-256 of the source's bytes.
    pub sha256: String,
    pub name: String,
    pub version: u32,
    /// The project root used for `file` selectors and relative paths ("" for the builtin).
    pub project_root: String,
    pub rules: usize,
}

/// What filtered a recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilterSummary {
    pub sources: Vec<SourceSummary>,
    pub default_exec: Exec,
    pub default_value_action: ValueAction,
    /// Index into `sources` of the source that set `default_value_action`.
    pub default_value_action_source: Option<usize>,
    pub io: IoConfig,
    /// Index into `sources` of the last source with an `[io]` section.
    pub io_source: Option<usize>,
}

impl FilterChain {
    /// Each source (path or `<builtin>`, SHA-256 of its bytes, rule count) and the defaults.
    pub fn summary(&self) -> FilterSummary {
        FilterSummary {
            sources: self
                .sources
                .iter()
                .map(|s| SourceSummary {
                    path: match &s.path {
                        Some(p) => p.display().to_string(),
                        None => s.name.clone(),
                    },
                    origin: s.origin,
                    sha256: s.sha256.clone(),
                    name: s.meta.name.clone(),
                    version: s.meta.version,
                    project_root: s.project_root.display().to_string(),
                    rules: s.rule_count,
                })
                .collect(),
            default_exec: self.default_exec,
            default_value_action: self.default_value,
            default_value_action_source: self.default_value_source,
            io: self.io.clone(),
            io_source: self.io_source,
        }
    }
}
