//! Selectors (spec F3): `kind:pattern` or `kind:match:pattern`, compiled once at load time.

use super::model::{MatchType, ScopeKind, SelectorKind};
use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Where a selector appears: a scope rule accepts `pkg`/`file`/`obj`, a value pattern accepts
/// `local`/`global`/`arg`/`ret`/`attr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    ScopeRule,
    ValuePattern,
}

/// When a selector's regex is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compile {
    /// At load: a pattern that does not compile is a load error.
    Eager,
    /// At the first match. Only for patterns known to compile (the builtin filter's, checked
    /// by a test): compiling `(?i)` alternations costs millions of instructions, and a run
    /// that never tests a value pattern should not pay for it.
    Lazy,
}

/// A regex compiled at its first use; clones share it.
struct LazyRegex {
    pattern: Box<str>,
    regex: OnceLock<Regex>,
}

impl LazyRegex {
    #[inline]
    fn get(&self) -> &Regex {
        self.regex.get_or_init(|| {
            Regex::new(&self.pattern).expect("a lazily compiled selector regex compiles (tested)")
        })
    }
}

/// A compiled selector.
#[derive(Clone)]
pub struct Selector {
    text: Arc<str>,
    kind: SelectorKind,
    match_type: MatchType,
    pattern: Box<str>,
    matcher: Matcher,
}

#[derive(Clone)]
enum Matcher {
    Glob(GlobMatcher),
    /// A glob with a single `*` and no other special character: `prefix*suffix`, where `*`
    /// matches any run without `/`. Same answers as the compiled glob, without the regex
    /// machinery, for the common `tmp_*` / `*_secret` value patterns.
    OneStar {
        prefix: Box<str>,
        suffix: Box<str>,
    },
    Regex(Regex),
    LazyRegex(Arc<LazyRegex>),
    Literal(Box<str>),
}

impl Selector {
    /// The selector exactly as written in its file.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn text_arc(&self) -> &Arc<str> {
        &self.text
    }

    pub fn kind(&self) -> SelectorKind {
        self.kind
    }

    pub fn match_type(&self) -> MatchType {
        self.match_type
    }

    /// The pattern that is matched, after the load-time rewrite of `file` patterns.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Does the selector match `subject`? Glob: whole string; regex: unanchored search;
    /// literal: equality. Does not allocate.
    #[inline]
    pub fn matches(&self, subject: &str) -> bool {
        match &self.matcher {
            Matcher::Glob(g) => g.is_match(subject),
            Matcher::OneStar { prefix, suffix } => {
                one_star(prefix.as_bytes(), suffix.as_bytes(), subject.as_bytes())
            }
            Matcher::Regex(r) => r.is_match(subject),
            Matcher::LazyRegex(r) => r.get().is_match(subject),
            Matcher::Literal(l) => &**l == subject,
        }
    }

    /// Compile a lazily compiled regex now (tests: the builtin filter's regexes compile).
    #[cfg(test)]
    pub(crate) fn force_compile(&self) {
        if let Matcher::LazyRegex(r) = &self.matcher {
            r.get();
        }
    }
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Selector")
            .field("text", &self.text)
            .field("kind", &self.kind)
            .field("match_type", &self.match_type)
            .field("pattern", &self.pattern)
            .field(
                "matcher",
                &match self.matcher {
                    Matcher::Glob(_) => "globset",
                    Matcher::OneStar { .. } => "one-star",
                    Matcher::Regex(_) => "regex",
                    Matcher::LazyRegex(_) => "regex (compiled at first use)",
                    Matcher::Literal(_) => "literal",
                },
            )
            .finish()
    }
}

/// Parse and compile `raw`. `project_root` is the root of the source the selector comes from;
/// it is used to rewrite `file` patterns. The error is a message that quotes the offending text.
pub(crate) fn parse_selector(
    raw: &str,
    place: Place,
    project_root: &Path,
    when: Compile,
) -> Result<Selector, String> {
    if raw.is_empty() {
        return Err("selector is empty".to_string());
    }
    // At most three parts: a third part may itself contain colons.
    let mut parts = raw.splitn(3, ':');
    let kind_token = parts.next().unwrap_or("");
    let Some(second) = parts.next() else {
        return Err(format!(
            "selector `{raw}` has no pattern (expected `kind:pattern` or `kind:match:pattern`)"
        ));
    };
    let third = parts.next();

    let kind = SelectorKind::parse(kind_token).ok_or_else(|| {
        format!(
            "selector `{raw}` has unknown kind `{kind_token}` (expected pkg, file, obj, local, global, arg, ret or attr)"
        )
    })?;
    match (place, kind) {
        (Place::ScopeRule, SelectorKind::Scope(_)) | (Place::ValuePattern, SelectorKind::Value(_)) => {}
        (Place::ScopeRule, SelectorKind::Value(_)) => {
            return Err(format!(
                "selector `{raw}`: kind `{kind}` is a value kind and cannot be used in a scope rule (use pkg, file or obj)"
            ))
        }
        (Place::ValuePattern, SelectorKind::Scope(_)) => {
            return Err(format!(
                "selector `{raw}`: kind `{kind}` is a scope kind and cannot be used in a value pattern (use local, global, arg, ret or attr)"
            ))
        }
    }

    let (match_type, pattern) = match third {
        None => (MatchType::Glob, second),
        Some(pattern) => {
            let match_type = MatchType::parse(second).ok_or_else(|| {
                if second.is_empty() {
                    format!("selector `{raw}` has an empty match type (expected glob, regex or literal)")
                } else {
                    format!(
                        "selector `{raw}` has unknown match type `{second}` (expected glob, regex or literal; \
                         a pattern that contains `:` needs an explicit match type, e.g. `{kind}:glob:{second}:{pattern}`)"
                    )
                }
            })?;
            (match_type, pattern)
        }
    };
    if pattern.is_empty() {
        return Err(format!("selector `{raw}` has an empty pattern"));
    }

    let pattern: String = if kind == SelectorKind::Scope(ScopeKind::File) {
        let rewritten = match match_type {
            MatchType::Glob => rewrite_file_glob(pattern, project_root),
            MatchType::Literal | MatchType::Regex => {
                rewrite_file_path_pattern(pattern, project_root)
                    .map_err(|why| format!("selector `{raw}`: file pattern `{pattern}` {why}"))?
            }
        };
        if rewritten.is_empty() {
            return Err(format!(
                "selector `{raw}`: file pattern `{pattern}` is empty once made relative to the project root `{}`",
                project_root.display()
            ));
        }
        rewritten
    } else {
        pattern.to_string()
    };

    let matcher =
        compile(match_type, &pattern, when).map_err(|why| format!("selector `{raw}`: {why}"))?;
    Ok(Selector {
        text: Arc::from(raw),
        kind,
        match_type,
        pattern: pattern.into_boxed_str(),
        matcher,
    })
}

fn compile(match_type: MatchType, pattern: &str, when: Compile) -> Result<Matcher, String> {
    Ok(match match_type {
        MatchType::Literal => Matcher::Literal(pattern.into()),
        MatchType::Glob => {
            if let Some(simple) = simple_glob(pattern) {
                return Ok(simple);
            }
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("glob `{pattern}` does not compile: {}", e.kind()))?;
            Matcher::Glob(glob.compile_matcher())
        }
        MatchType::Regex if when == Compile::Lazy => Matcher::LazyRegex(Arc::new(LazyRegex {
            pattern: pattern.into(),
            regex: OnceLock::new(),
        })),
        MatchType::Regex => Matcher::Regex(Regex::new(pattern).map_err(|e| {
            format!(
                "regex `{pattern}` does not compile: {}",
                one_line(&e.to_string())
            )
        })?),
    })
}

/// `prefix*suffix` where `*` does not cross `/`. Written as byte loops: identifiers and
/// affixes are short, and an out-of-line `memcmp` call per affix cost more than the compare.
#[inline]
fn one_star(prefix: &[u8], suffix: &[u8], subject: &[u8]) -> bool {
    if subject.len() < prefix.len() + suffix.len() {
        return false;
    }
    let (head, rest) = subject.split_at(prefix.len());
    let (middle, tail) = rest.split_at(rest.len() - suffix.len());
    head.iter().zip(prefix).all(|(a, b)| a == b)
        && tail.iter().zip(suffix).all(|(a, b)| a == b)
        && !middle.contains(&b'/')
}

/// Globs without special characters are literals; globs whose only special character is a
/// single `*` are prefix/suffix tests. Everything else goes to `globset`.
fn simple_glob(pattern: &str) -> Option<Matcher> {
    if pattern.contains(['?', '[', ']', '{', '}', '\\']) {
        return None;
    }
    let mut parts = pattern.split('*');
    let prefix = parts.next()?;
    match (parts.next(), parts.next()) {
        (None, _) => Some(Matcher::Literal(pattern.into())),
        (Some(suffix), None) => Some(Matcher::OneStar {
            prefix: prefix.into(),
            suffix: suffix.into(),
        }),
        _ => None,
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// F3, `file` globs: backslashes become `/`; leading `./` sequences are removed, then leading
/// `/`; then a leading `<project root without its leading />/` is removed.
pub(crate) fn rewrite_file_glob(pattern: &str, project_root: &Path) -> String {
    let replaced = pattern.replace('\\', "/");
    let mut rest = replaced.as_str();
    while let Some(r) = rest.strip_prefix("./") {
        rest = r;
    }
    let rest = rest.trim_start_matches('/');
    let root = project_root.to_string_lossy();
    let root = root.trim_start_matches('/');
    if !root.is_empty() {
        if let Some(r) = rest.strip_prefix(root).and_then(|r| r.strip_prefix('/')) {
            return r.to_string();
        }
    }
    rest.to_string()
}

/// F3, `file` literal and regex patterns are treated as paths: an absolute pattern must lie
/// under the project root and is made relative to it; `.` segments are dropped; each `..`
/// removes one earlier segment (climbing above the start is an error); segments are joined
/// with `/`.
pub(crate) fn rewrite_file_path_pattern(
    pattern: &str,
    project_root: &Path,
) -> Result<String, String> {
    let path = Path::new(pattern);
    let relative: &Path = if path.is_absolute() {
        path.strip_prefix(project_root).map_err(|_| {
            format!(
                "is absolute but does not lie under the project root `{}`",
                project_root.display()
            )
        })?
    } else {
        path
    };
    let mut out = PathBuf::new();
    for component in relative.components() {
        match component {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return Err("climbs above the project root with `..`".to_string());
                }
            }
            Component::Normal(part) => out.push(part),
        }
    }
    let segments: Vec<String> = out
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Ok(segments.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The builtin filter's regexes are compiled at their first match (`Compile::Lazy`),
    /// where a failure could not be reported as a load error: each one must compile, and
    /// must answer as an eagerly compiled copy does.
    #[test]
    fn the_builtin_filters_lazy_regexes_compile() {
        let chain = crate::filters::FilterChain::builtin_only();
        let mut lazy = 0;
        let selectors = chain.rules().iter().flat_map(|rule| {
            std::iter::once(rule.selector())
                .chain(rule.value_patterns().iter().map(|p| p.selector()))
        });
        for selector in selectors {
            if let Matcher::LazyRegex(_) = selector.matcher {
                lazy += 1;
                selector.force_compile();
                let eager = Regex::new(selector.pattern())
                    .unwrap_or_else(|e| panic!("{}: {e}", selector.text()));
                for subject in [
                    "usr/lib/python3.12/os.py",
                    "api_key",
                    "Token",
                    "x",
                    "asyncio.tasks",
                ] {
                    assert_eq!(
                        selector.matches(subject),
                        eager.is_match(subject),
                        "{}",
                        selector.text()
                    );
                }
            }
        }
        assert_eq!(
            lazy, 9,
            "the builtin filter's regex selectors are all compiled lazily"
        );
    }

    /// A regex in any other source is compiled at load, so a bad one is a load error.
    #[test]
    fn eager_regexes_report_errors_at_load() {
        let err = parse_selector(
            "local:regex:(unclosed",
            Place::ValuePattern,
            Path::new(""),
            Compile::Eager,
        )
        .unwrap_err();
        assert!(err.contains("does not compile"), "{err}");
        let ok = parse_selector(
            "local:regex:tok",
            Place::ValuePattern,
            Path::new(""),
            Compile::Eager,
        )
        .unwrap();
        assert!(matches!(ok.matcher, Matcher::Regex(_)));
    }

    /// The fast paths give the same answers as globset with `literal_separator(true)`.
    #[test]
    fn simple_globs_agree_with_globset() {
        let subjects = [
            "",
            "tmp",
            "tmp_",
            "tmp_x",
            "tmp_/x",
            "x_tmp",
            "a/b",
            "ab",
            "a.b.c",
            "secret",
            "my_secret",
            "my/secret",
            "x*y",
            "tmp_secret",
            ".hidden",
            "a/tmp_x",
        ];
        for pattern in [
            "tmp_*", "*_secret", "*", "a*b", "tmp", "a.b.c", "*secret", "x*y", ".*",
        ] {
            let fast = simple_glob(pattern).expect(pattern);
            let slow = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .unwrap()
                .compile_matcher();
            let fast = Selector {
                text: Arc::from(pattern),
                kind: SelectorKind::Value(super::super::model::ValueKind::Local),
                match_type: MatchType::Glob,
                pattern: pattern.into(),
                matcher: fast,
            };
            for s in subjects {
                assert_eq!(fast.matches(s), slow.is_match(s), "{pattern} vs {s:?}");
            }
        }
        assert!(simple_glob("a**").is_none());
        assert!(simple_glob("a?").is_none());
        assert!(simple_glob(r"a\*").is_none());
        assert!(simple_glob("{a,b}").is_none());
    }
}
