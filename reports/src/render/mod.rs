//! Rendering an [`Aggregate`] and its gate results: one file per [`Format`].

use std::fmt;
use std::str::FromStr;

use crate::aggregate::Aggregate;
use crate::gates::GateResult;

mod evidence;
mod grid;
mod json;
mod markdown;
mod table;

pub use json::{JsonReport, REPORT_SCHEMA};

/// The widest line [`Format::Table`] writes.
pub const TABLE_WIDTH: usize = 100;

/// An output format of [`render`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Aligned plain text for a terminal, at most [`TABLE_WIDTH`] columns.
    Table,
    /// GitHub-flavoured Markdown, for a pull-request comment.
    Markdown,
    /// Pretty JSON ([`JsonReport`], schema [`REPORT_SCHEMA`]), for machines.
    Json,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Table, Format::Markdown, Format::Json];

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Markdown => "markdown",
            Format::Json => "json",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of [`Format::from_str`], naming the formats there are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownFormat(pub String);

impl fmt::Display for UnknownFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown report format {:?} (expected table, markdown or json)",
            self.0
        )
    }
}

impl std::error::Error for UnknownFormat {}

impl FromStr for Format {
    type Err = UnknownFormat;

    /// `table`, `markdown` (or `md`), `json`; case-insensitive.
    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        match s.to_ascii_lowercase().as_str() {
            "table" => Ok(Format::Table),
            "markdown" | "md" => Ok(Format::Markdown),
            "json" => Ok(Format::Json),
            _ => Err(UnknownFormat(s.to_owned())),
        }
    }
}

/// Renders the report: the gate verdicts first (when there are any), then the evidence.
/// The text ends with a newline.
pub fn render(agg: &Aggregate, gates: &[GateResult], format: Format) -> String {
    match format {
        Format::Table => table::render(agg, gates),
        Format::Markdown => markdown::render(agg, gates),
        Format::Json => json::render(agg, gates),
    }
}

/// A rule for display: `pkg:glob:mypkg.* (filters.toml #3)`, or `(default)`.
pub(crate) fn rule_text(rule: &Option<ct_shadow::RuleRef>) -> String {
    match rule {
        Some(r) => format!("{} ({} #{})", r.selector, r.source, r.index),
        None => "(chain default)".to_owned(),
    }
}
