//! Loading (spec F1/F2): chain assembly, project filter discovery and the TOML schema.
//!
//! Parsing goes through serde with `deny_unknown_fields` on every table, so an unknown key is
//! rejected at every level, and through `toml::Spanned` on every value that is checked after
//! parsing, so each error can point at the offending key or value (line and column).

use super::builtin::{BUILTIN_NAME, BUILTIN_TOML};
use super::chain::{FilterChain, FilterSource, ScopeRule, SourceOrigin};
use super::error::{FilterError, FilterErrorKind};
use super::model::{Exec, FilterMeta, IoConfig, IoStream, SelectorKind, ValueAction};
use super::selector::{parse_selector, Compile, Place};
use super::values::{PatternSet, ValuePattern};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use toml::Spanned;

/// The environment variable that lists explicit filter files (`::`-separated).
pub const ENV_VAR: &str = "CODETRACER_TRACE_FILTER";

/// Where a project filter lives, relative to a directory on the way up from the program.
pub const PROJECT_FILTER_RELATIVE_PATH: &str = ".codetracer/trace-filter.toml";

/// The separator between several paths in one `CODETRACER_TRACE_FILTER` or `--trace-filter`
/// value.
pub const PATH_LIST_SEPARATOR: &str = "::";

/// What [`FilterChain::load`] builds the chain from (spec F1).
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The traced program's directory (the script's directory; the working directory for
    /// `-m`). The first `.codetracer/trace-filter.toml` found walking up from it is loaded
    /// after the builtin. `None`: no discovery. A relative directory is taken from the
    /// current directory.
    pub program_dir: Option<PathBuf>,
    /// The value of `CODETRACER_TRACE_FILTER`, if set (see [`LoadOptions::env_value_from_env`]).
    pub env_value: Option<String>,
    /// `--trace-filter` values in command-line order; each may itself list paths separated by
    /// `::`.
    pub cli_paths: Vec<PathBuf>,
    /// Load the builtin filter first. `false` is `--no-default-filter`.
    pub include_builtin: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            program_dir: None,
            env_value: None,
            cli_paths: Vec::new(),
            include_builtin: true,
        }
    }
}

impl LoadOptions {
    /// Read [`ENV_VAR`] from the process environment (unset or not UTF-8: `None`).
    pub fn env_value_from_env() -> Option<String> {
        std::env::var(ENV_VAR).ok()
    }
}

/// Split a `::`-separated list of paths. Entries are trimmed; empty entries are ignored.
pub fn split_path_list(value: &str) -> Vec<&str> {
    value
        .split(PATH_LIST_SEPARATOR)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// F1: the first `.codetracer/trace-filter.toml` (a regular file, symlinks followed) found in
/// `program_dir` or one of its ancestors.
pub fn discover_project_filter(program_dir: &Path) -> Option<PathBuf> {
    let start = lexical_absolute(program_dir).ok()?;
    start
        .ancestors()
        .map(|dir| dir.join(PROJECT_FILTER_RELATIVE_PATH))
        .find(|candidate| candidate.is_file())
}

/// Make `path` absolute against the current directory and resolve `.` and `..` lexically
/// (no symlink resolution), so project roots are clean prefixes of `co_filename`s.
fn lexical_absolute(path: &Path) -> std::io::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    Ok(out)
}

/// F1: a file's project root is the parent of its nearest ancestor directory named
/// `.codetracer`; without one, the file's own directory. Lexical: pass an absolute path.
pub fn project_root_of(file: &Path) -> PathBuf {
    let parent = file.parent().unwrap_or(Path::new(""));
    for dir in parent.ancestors() {
        if dir.file_name().is_some_and(|n| n == ".codetracer") {
            return dir.parent().unwrap_or(Path::new("")).to_path_buf();
        }
    }
    parent.to_path_buf()
}

/// Builds a chain source by source, in chain order. [`FilterChain::load`] is the usual entry
/// point; the builder serves embedders (the Python API) and tests.
#[derive(Debug, Default, Clone)]
pub struct ChainBuilder {
    pending: Vec<Pending>,
}

#[derive(Debug, Clone)]
enum Pending {
    Builtin,
    File {
        given: String,
        path: PathBuf,
        origin: SourceOrigin,
    },
    Inline {
        name: String,
        project_root: PathBuf,
        text: String,
    },
}

impl ChainBuilder {
    pub fn new() -> ChainBuilder {
        ChainBuilder::default()
    }

    /// Append the builtin filter (root: the empty path).
    pub fn builtin(mut self) -> ChainBuilder {
        self.pending.push(Pending::Builtin);
        self
    }

    /// Append a filter file. A relative path is taken from the current directory.
    pub fn file(self, path: impl Into<PathBuf>) -> ChainBuilder {
        self.file_with_origin(path.into(), SourceOrigin::Api)
    }

    /// Append a filter given as text, with an explicit project root and a name used in errors
    /// and in the summary.
    pub fn inline(
        mut self,
        name: impl Into<String>,
        project_root: impl Into<PathBuf>,
        text: impl Into<String>,
    ) -> ChainBuilder {
        self.pending.push(Pending::Inline {
            name: name.into(),
            project_root: project_root.into(),
            text: text.into(),
        });
        self
    }

    fn file_with_origin(mut self, path: PathBuf, origin: SourceOrigin) -> ChainBuilder {
        self.pending.push(Pending::File {
            given: path.display().to_string(),
            path,
            origin,
        });
        self
    }

    /// Read, parse, validate and compile every source.
    pub fn build(self) -> Result<FilterChain, FilterError> {
        let mut asm = Assembly::default();
        for pending in self.pending {
            match pending {
                Pending::Builtin => asm.add(
                    BUILTIN_NAME,
                    None,
                    PathBuf::new(),
                    BUILTIN_TOML.as_bytes(),
                    SourceOrigin::Builtin,
                )?,
                Pending::File {
                    given,
                    path,
                    origin,
                } => {
                    let absolute = lexical_absolute(&path).map_err(|e| {
                        FilterError::new(
                            FilterErrorKind::Read,
                            &given,
                            format!("cannot resolve the path: {e}"),
                        )
                    })?;
                    let bytes = std::fs::read(&absolute).map_err(|e| {
                        FilterError::new(
                            FilterErrorKind::Read,
                            &given,
                            format!("cannot read the filter file: {e}"),
                        )
                    })?;
                    let root = project_root_of(&absolute);
                    asm.add(&given, Some(absolute), root, &bytes, origin)?;
                }
                Pending::Inline {
                    name,
                    project_root,
                    text,
                } => asm.add(
                    &name,
                    None,
                    project_root,
                    text.as_bytes(),
                    SourceOrigin::Api,
                )?,
            }
        }
        Ok(asm.finish())
    }
}

impl FilterChain {
    /// Spec F1: builtin (unless disabled), then the discovered project filter, then
    /// `CODETRACER_TRACE_FILTER` entries, then `--trace-filter` entries.
    pub fn load(opts: &LoadOptions) -> Result<FilterChain, FilterError> {
        let mut builder = ChainBuilder::new();
        if opts.include_builtin {
            builder = builder.builtin();
        }
        if let Some(dir) = &opts.program_dir {
            if let Some(found) = discover_project_filter(dir) {
                builder = builder.file_with_origin(found, SourceOrigin::Discovered);
            }
        }
        if let Some(value) = &opts.env_value {
            for entry in split_path_list(value) {
                builder = builder.file_with_origin(PathBuf::from(entry), SourceOrigin::Env);
            }
        }
        for value in &opts.cli_paths {
            let value = value.to_string_lossy();
            for entry in split_path_list(&value) {
                builder = builder.file_with_origin(PathBuf::from(entry), SourceOrigin::Cli);
            }
        }
        builder.build()
    }

    /// A chain with only the builtin filter.
    pub fn builtin_only() -> FilterChain {
        ChainBuilder::new()
            .builtin()
            .build()
            .expect("the embedded builtin filter is valid")
    }

    /// Start a chain source by source.
    pub fn builder() -> ChainBuilder {
        ChainBuilder::new()
    }
}

#[derive(Default)]
struct Assembly {
    sources: Vec<FilterSource>,
    rules: Vec<ScopeRule>,
    default_exec: Option<(Exec, usize)>,
    default_value: Option<(ValueAction, usize)>,
    io: Option<(IoConfig, usize)>,
}

// ---- raw schema ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    meta: RawMeta,
    scope: RawScope,
    #[serde(default)]
    io: Option<RawIo>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeta {
    name: Spanned<String>,
    version: Spanned<i64>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    labels: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScope {
    default_exec: Spanned<String>,
    default_value_action: Spanned<String>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    selector: Spanned<String>,
    #[serde(default)]
    exec: Option<Spanned<String>>,
    #[serde(default)]
    value_default: Option<Spanned<String>>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    value_patterns: Vec<RawValuePattern>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValuePattern {
    selector: Spanned<String>,
    action: Spanned<String>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIo {
    #[serde(default)]
    capture: Option<Spanned<bool>>,
    #[serde(default)]
    streams: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    modes: Option<Spanned<Vec<toml::Value>>>,
}

// ---- validation ---------------------------------------------------------------------------

struct Ctx<'a> {
    name: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err<T>(&self, kind: FilterErrorKind, msg: String, at: &Spanned<T>) -> FilterError {
        FilterError::new(kind, self.name, msg).at(self.text, Some(at.span()))
    }
}

impl Assembly {
    fn add(
        &mut self,
        name: &str,
        path: Option<PathBuf>,
        project_root: PathBuf,
        bytes: &[u8],
        origin: SourceOrigin,
    ) -> Result<(), FilterError> {
        let sha256 = format!("{:x}", Sha256::digest(bytes));
        let text = std::str::from_utf8(bytes).map_err(|e| {
            FilterError::new(
                FilterErrorKind::Read,
                name,
                format!("the filter file is not UTF-8: {e}"),
            )
        })?;
        let cx = Ctx { name, text };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            FilterError::new(
                FilterErrorKind::Syntax,
                name,
                e.message().trim().lines().collect::<Vec<_>>().join("; "),
            )
            .at(text, e.span())
        })?;
        let index = self.sources.len();
        // The builtin filter is a fixed text whose regexes are known to compile (tested):
        // they are compiled at their first match, so a run that never needs one (evidence-only
        // never matches a value pattern) does not pay for it (≈ 18 M instructions at start).
        // Every other source is compiled now, so that its errors are reported at load.
        let compile = if matches!(origin, SourceOrigin::Builtin) {
            Compile::Lazy
        } else {
            Compile::Eager
        };

        // [meta]
        let meta_name = raw.meta.name.get_ref().trim();
        if meta_name.is_empty() {
            return Err(cx.err(
                FilterErrorKind::InvalidValue,
                "`meta.name` must not be empty".to_string(),
                &raw.meta.name,
            ));
        }
        let version = *raw.meta.version.get_ref();
        let version = u32::try_from(version)
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| {
                cx.err(
                    FilterErrorKind::InvalidValue,
                    format!("`meta.version` must be an integer of at least 1, found {version}"),
                    &raw.meta.version,
                )
            })?;
        let mut labels: Vec<String> = Vec::new();
        for label in raw.meta.labels {
            if !labels.contains(&label) {
                labels.push(label);
            }
        }
        let meta = FilterMeta {
            name: raw.meta.name.get_ref().clone(),
            version,
            description: raw.meta.description,
            labels,
        };

        // [scope] defaults
        let token = raw.scope.default_exec.get_ref().as_str();
        if token == "inherit" {
            if self.default_exec.is_none() {
                return Err(cx.err(
                    FilterErrorKind::InheritWithoutPrevious,
                    "`scope.default_exec = \"inherit\"` in the first source of the chain: there is no previous filter to inherit from".to_string(),
                    &raw.scope.default_exec,
                ));
            }
        } else {
            let exec = Exec::parse(token).ok_or_else(|| {
                cx.err(
                    FilterErrorKind::InvalidValue,
                    format!("`scope.default_exec` must be trace, skip or inherit, found `{token}`"),
                    &raw.scope.default_exec,
                )
            })?;
            self.default_exec = Some((exec, index));
        }
        let token = raw.scope.default_value_action.get_ref().as_str();
        if token == "inherit" {
            if self.default_value.is_none() {
                return Err(cx.err(
                    FilterErrorKind::InheritWithoutPrevious,
                    "`scope.default_value_action = \"inherit\"` in the first source of the chain: there is no previous filter to inherit from".to_string(),
                    &raw.scope.default_value_action,
                ));
            }
        } else {
            let action = ValueAction::parse(token).ok_or_else(|| {
                cx.err(
                    FilterErrorKind::InvalidValue,
                    format!(
                        "`scope.default_value_action` must be allow, redact, drop, deny or inherit, found `{token}`"
                    ),
                    &raw.scope.default_value_action,
                )
            })?;
            self.default_value = Some((action, index));
        }

        // [io]
        if let Some(io) = raw.io {
            let capture = io.capture.as_ref().is_some_and(|c| *c.get_ref());
            let mut streams: Vec<IoStream> = Vec::new();
            for s in io.streams.iter().flatten() {
                let stream = IoStream::parse(s.get_ref()).ok_or_else(|| {
                    cx.err(
                        FilterErrorKind::InvalidValue,
                        format!(
                            "unknown stream `{}` in `io.streams` (expected stdout, stderr, stdin or files)",
                            s.get_ref()
                        ),
                        s,
                    )
                })?;
                if !streams.contains(&stream) {
                    streams.push(stream);
                }
            }
            if let Some(modes) = &io.modes {
                if !modes.get_ref().is_empty() {
                    return Err(cx.err(
                        FilterErrorKind::InvalidValue,
                        "`io.modes` is reserved and must be absent or empty".to_string(),
                        modes,
                    ));
                }
            }
            if capture && streams.is_empty() {
                let at = io.capture.as_ref().expect("capture is set");
                return Err(cx.err(
                    FilterErrorKind::InvalidValue,
                    "`io.capture = true` requires a non-empty `io.streams`".to_string(),
                    at,
                ));
            }
            self.io = Some((IoConfig { capture, streams }, index));
        }

        // [[scope.rules]]
        let mut rules = Vec::with_capacity(raw.scope.rules.len());
        for (i, rule) in raw.scope.rules.into_iter().enumerate() {
            let selector = parse_selector(
                rule.selector.get_ref(),
                Place::ScopeRule,
                &project_root,
                compile,
            )
            .map_err(|msg| {
                cx.err(FilterErrorKind::InvalidSelector, msg, &rule.selector)
                    .with_text(rule.selector.get_ref().clone())
            })?;
            let scope_kind = match selector.kind() {
                SelectorKind::Scope(k) => k,
                SelectorKind::Value(_) => unreachable!("checked by parse_selector"),
            };
            let exec = match &rule.exec {
                None => None,
                Some(t) if t.get_ref() == "inherit" => None,
                Some(t) => Some(Exec::parse(t.get_ref()).ok_or_else(|| {
                    cx.err(
                        FilterErrorKind::InvalidValue,
                        format!(
                            "rule `exec` must be trace, skip or inherit, found `{}`",
                            t.get_ref()
                        ),
                        t,
                    )
                })?),
            };
            let value_default = match &rule.value_default {
                None => None,
                Some(t) if t.get_ref() == "inherit" => None,
                Some(t) => Some(ValueAction::parse(t.get_ref()).ok_or_else(|| {
                    cx.err(
                        FilterErrorKind::InvalidValue,
                        format!(
                            "rule `value_default` must be allow, redact, drop, deny or inherit, found `{}`",
                            t.get_ref()
                        ),
                        t,
                    )
                })?),
            };
            let mut patterns = Vec::with_capacity(rule.value_patterns.len());
            for p in rule.value_patterns {
                let selector = parse_selector(
                    p.selector.get_ref(),
                    Place::ValuePattern,
                    &project_root,
                    compile,
                )
                .map_err(|msg| {
                    cx.err(FilterErrorKind::InvalidSelector, msg, &p.selector)
                        .with_text(p.selector.get_ref().clone())
                })?;
                let action = ValueAction::parse(p.action.get_ref()).ok_or_else(|| {
                    cx.err(
                        FilterErrorKind::InvalidValue,
                        format!(
                            "value pattern `action` must be allow, redact, drop or deny, found `{}`",
                            p.action.get_ref()
                        ),
                        &p.action,
                    )
                })?;
                patterns.push(ValuePattern {
                    selector,
                    action,
                    reason: p.reason.map(Arc::from),
                    source: index,
                });
            }
            rules.push(ScopeRule {
                source: index,
                index_in_source: i,
                selector,
                scope_kind,
                exec,
                value_default,
                reason: rule.reason.map(Arc::from),
                patterns: Arc::new(PatternSet::new(patterns)),
            });
        }
        self.sources.push(FilterSource {
            name: name.to_string(),
            path,
            project_root,
            sha256,
            meta,
            rule_count: rules.len(),
            origin,
        });
        self.rules.extend(rules);
        Ok(())
    }

    fn finish(self) -> FilterChain {
        FilterChain {
            sources: self.sources,
            rules: self.rules,
            default_exec: self.default_exec.map_or(Exec::Trace, |(e, _)| e),
            default_exec_source: self.default_exec.map(|(_, s)| s),
            default_value: self.default_value.map_or(ValueAction::Allow, |(v, _)| v),
            default_value_source: self.default_value.map(|(_, s)| s),
            io: self
                .io
                .as_ref()
                .map(|(io, _)| io.clone())
                .unwrap_or_default(),
            io_source: self.io.map(|(_, s)| s),
            empty_patterns: Arc::new(PatternSet::default()),
        }
    }
}
