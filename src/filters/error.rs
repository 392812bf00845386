//! Load errors. Every error names the source (file path, `<builtin>`, or the environment
//! variable) and, when the problem sits inside a TOML document, the 1-based line and column of
//! the offending key or value together with its text.

use std::fmt;
use std::ops::Range;

/// What went wrong, for callers that branch on it (the CLI maps every kind to exit status 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterErrorKind {
    /// The file could not be read.
    Read,
    /// Not valid TOML, or not the schema: unknown key, missing key, wrong type.
    Syntax,
    /// A value the schema accepts by type but not by content (empty `meta.name`,
    /// `version = 0`, `exec = "sometimes"`, an unknown stream, non-empty `io.modes`...).
    InvalidValue,
    /// A selector that does not parse, has the wrong kind for its place, or whose glob or
    /// regex does not compile; also a file pattern that leaves the project root.
    InvalidSelector,
    /// `inherit` used for a `[scope]` default in the first source of the chain.
    InheritWithoutPrevious,
}

/// A filter chain could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// The kind of problem.
    pub kind: FilterErrorKind,
    /// The source as the user named it: a path, `<builtin>`.
    pub file: String,
    /// 1-based line of the offending key or value, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the offending key or value, when known.
    pub column: Option<usize>,
    /// The offending text (a key, a value, a selector), when known.
    pub text: Option<String>,
    /// Human-readable explanation; it quotes the offending text where that helps.
    pub message: String,
}

impl FilterError {
    pub(crate) fn new(kind: FilterErrorKind, file: &str, message: impl Into<String>) -> Self {
        FilterError {
            kind,
            file: file.to_string(),
            line: None,
            column: None,
            text: None,
            message: message.into(),
        }
    }

    /// Attach the location of `span` (byte range into `source`) and the text found there.
    pub(crate) fn at(mut self, source: &str, span: Option<Range<usize>>) -> Self {
        let Some(span) = span else {
            return self;
        };
        let start = span.start.min(source.len());
        let end = span.end.clamp(start, source.len());
        // A span over the whole document (a missing top-level key) locates nothing.
        if start == 0 && end == source.len() && !source.is_empty() {
            return self;
        }
        let (line, column) = line_column(source, start);
        self.line = Some(line);
        self.column = Some(column);
        if self.text.is_none() {
            let mut text = source.get(start..end).unwrap_or("");
            if text.trim().is_empty() {
                // A zero-width span (a syntax error): show the line it sits on.
                let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
                let line_end = source[start..]
                    .find('\n')
                    .map_or(source.len(), |i| start + i);
                text = &source[line_start..line_end];
            }
            // Keep the first line only: a span may cover a whole table.
            let first = text.lines().next().unwrap_or("").trim();
            if !first.is_empty() {
                self.text = Some(first.to_string());
            }
        }
        self
    }

    pub(crate) fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }
}

/// 1-based line and character column of byte `offset` in `source`.
pub(crate) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "trace filter {}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)?;
        if let Some(text) = &self.text {
            if !self.message.contains(text.as_str()) {
                write!(f, " (at `{text}`)")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for FilterError {}
