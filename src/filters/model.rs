//! Plain data of a loaded filter chain: directives, value actions, selector kinds, the
//! metadata of each source and the `[io]` section (spec Part F2/F3).

use serde::Serialize;
use std::fmt;

/// Scope-level execution decision (`exec` in a rule, `default_exec` in `[scope]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Exec {
    Trace,
    Skip,
}

impl Exec {
    /// The token used in filter files.
    pub fn as_str(self) -> &'static str {
        match self {
            Exec::Trace => "trace",
            Exec::Skip => "skip",
        }
    }

    pub(crate) fn parse(token: &str) -> Option<Exec> {
        match token {
            "trace" => Some(Exec::Trace),
            "skip" => Some(Exec::Skip),
            _ => None,
        }
    }
}

impl fmt::Display for Exec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to a recorded value (F6). `deny` in a file is an alias for [`ValueAction::Redact`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueAction {
    /// Record the value.
    Allow,
    /// Record a placeholder instead of the value.
    Redact,
    /// Omit the value (for `ret`, the return event is still emitted with a dropped placeholder).
    Drop,
}

impl ValueAction {
    /// The canonical token (never `deny`).
    pub fn as_str(self) -> &'static str {
        match self {
            ValueAction::Allow => "allow",
            ValueAction::Redact => "redact",
            ValueAction::Drop => "drop",
        }
    }

    pub(crate) fn parse(token: &str) -> Option<ValueAction> {
        match token {
            "allow" => Some(ValueAction::Allow),
            "redact" | "deny" => Some(ValueAction::Redact),
            "drop" => Some(ValueAction::Drop),
            _ => None,
        }
    }
}

impl fmt::Display for ValueAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of a recorded value, as named by value selectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueKind {
    /// `local:` a local variable.
    Local,
    /// `global:` a module global.
    Global,
    /// `arg:` a call argument.
    Arg,
    /// `ret:` a return value (the identifier is the function's name as the tracer reports it).
    Return,
    /// `attr:` an attribute.
    Attr,
}

impl ValueKind {
    /// Every value kind, in selector-documentation order.
    pub const ALL: [ValueKind; 5] = [
        ValueKind::Local,
        ValueKind::Global,
        ValueKind::Arg,
        ValueKind::Return,
        ValueKind::Attr,
    ];

    /// Dense index, used to keep patterns grouped by kind.
    pub(crate) fn index(self) -> usize {
        match self {
            ValueKind::Local => 0,
            ValueKind::Global => 1,
            ValueKind::Arg => 2,
            ValueKind::Return => 3,
            ValueKind::Attr => 4,
        }
    }

    /// The selector token (`local`, `global`, `arg`, `ret`, `attr`).
    pub fn as_str(self) -> &'static str {
        SelectorKind::Value(self).as_str()
    }
}

/// What a scope selector tests (F5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeKind {
    /// `pkg:` the module name.
    Pkg,
    /// `file:` the relative path, or the absolute path when there is no relative path.
    File,
    /// `obj:` the object name (module name + `.` + qualname).
    Obj,
}

/// Any selector kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SelectorKind {
    Scope(ScopeKind),
    Value(ValueKind),
}

impl SelectorKind {
    pub(crate) fn parse(token: &str) -> Option<SelectorKind> {
        Some(match token {
            "pkg" => SelectorKind::Scope(ScopeKind::Pkg),
            "file" => SelectorKind::Scope(ScopeKind::File),
            "obj" => SelectorKind::Scope(ScopeKind::Obj),
            "local" => SelectorKind::Value(ValueKind::Local),
            "global" => SelectorKind::Value(ValueKind::Global),
            "arg" => SelectorKind::Value(ValueKind::Arg),
            "ret" => SelectorKind::Value(ValueKind::Return),
            "attr" => SelectorKind::Value(ValueKind::Attr),
            _ => return None,
        })
    }

    /// The token used in selector strings.
    pub fn as_str(self) -> &'static str {
        match self {
            SelectorKind::Scope(ScopeKind::Pkg) => "pkg",
            SelectorKind::Scope(ScopeKind::File) => "file",
            SelectorKind::Scope(ScopeKind::Obj) => "obj",
            SelectorKind::Value(ValueKind::Local) => "local",
            SelectorKind::Value(ValueKind::Global) => "global",
            SelectorKind::Value(ValueKind::Arg) => "arg",
            SelectorKind::Value(ValueKind::Return) => "ret",
            SelectorKind::Value(ValueKind::Attr) => "attr",
        }
    }
}

impl fmt::Display for SelectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a selector's pattern is compared with its subject (F3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchType {
    /// Whole-string glob; `*`/`?` do not cross `/`; `**`, `[...]`, `{a,b}` supported.
    Glob,
    /// Rust `regex` syntax, unanchored search.
    Regex,
    /// Exact equality.
    Literal,
}

impl MatchType {
    pub(crate) fn parse(token: &str) -> Option<MatchType> {
        match token {
            "glob" => Some(MatchType::Glob),
            "regex" => Some(MatchType::Regex),
            "literal" => Some(MatchType::Literal),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Glob => "glob",
            MatchType::Regex => "regex",
            MatchType::Literal => "literal",
        }
    }
}

/// `[meta]` of one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilterMeta {
    pub name: String,
    pub version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Deduplicated, first occurrence order kept.
    pub labels: Vec<String>,
}

/// A stream named in `[io].streams`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IoStream {
    Stdout,
    Stderr,
    Stdin,
    Files,
}

impl IoStream {
    pub(crate) fn parse(token: &str) -> Option<IoStream> {
        match token {
            "stdout" => Some(IoStream::Stdout),
            "stderr" => Some(IoStream::Stderr),
            "stdin" => Some(IoStream::Stdin),
            "files" => Some(IoStream::Files),
            _ => None,
        }
    }
}

/// The `[io]` section in force: the one of the last source that has one (F2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IoConfig {
    pub capture: bool,
    /// Deduplicated, first occurrence order kept.
    pub streams: Vec<IoStream>,
}
