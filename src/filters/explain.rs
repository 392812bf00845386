//! `explain`: every rule that matched a code object, in order, with its effect, and the
//! final decision — for `ct-record --explain-filter`-style diagnostics and for tests.

use super::chain::{FilterChain, ScopeRule};
use super::eval::Decision;
use super::model::{Exec, ScopeKind, ValueAction};
use super::scope::ScopeContext;
use std::fmt;

/// One matching rule and what it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplainStep {
    /// Index in [`FilterChain::rules`].
    pub rule_index: usize,
    pub source_index: usize,
    /// The source's name (path or `<builtin>`).
    pub source_name: String,
    /// Position of the rule in its file (0-based) and the file's rule count.
    pub index_in_source: usize,
    pub rules_in_source: usize,
    pub selector: String,
    /// What the selector tested and the tested text.
    pub subject_kind: ScopeKind,
    pub subject: String,
    /// `Some` when the rule set `exec`.
    pub exec: Option<Exec>,
    /// `Some` when the rule set `value_default`.
    pub value_default: Option<ValueAction>,
    /// The number of value patterns that replaced the current list (possibly 0).
    pub value_patterns: usize,
    pub reason: Option<String>,
}

impl ExplainStep {
    pub(crate) fn new(
        chain: &FilterChain,
        rule_index: usize,
        rule: &ScopeRule,
        subject: &str,
    ) -> Self {
        let source = &chain.sources[rule.source];
        ExplainStep {
            rule_index,
            source_index: rule.source,
            source_name: source.name.clone(),
            index_in_source: rule.index_in_source,
            rules_in_source: source.rule_count,
            selector: rule.selector.text().to_string(),
            subject_kind: rule.scope_kind,
            subject: subject.to_string(),
            exec: rule.exec,
            value_default: rule.value_default,
            value_patterns: rule.patterns.len(),
            reason: rule.reason.as_deref().map(str::to_string),
        }
    }
}

/// The full story of one evaluation.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub context: ScopeContext,
    pub default_exec: Exec,
    pub default_exec_source: Option<String>,
    pub default_value: ValueAction,
    pub default_value_source: Option<String>,
    /// Matching rules in chain order; the last one is the matched rule.
    pub steps: Vec<ExplainStep>,
    /// Names of the chain's sources, by index.
    pub source_names: Vec<String>,
    /// Same as [`FilterChain::evaluate`] on the same context.
    pub decision: Decision,
}

impl FilterChain {
    /// Every rule that matched `ctx`, in order, with its effect, and the final decision.
    pub fn explain(&self, ctx: &ScopeContext) -> Explanation {
        let mut steps = Vec::new();
        let decision = self.run(ctx, Some(&mut steps));
        let name = |i: Option<usize>| i.map(|i| self.sources[i].name.clone());
        Explanation {
            context: ctx.clone(),
            default_exec: self.default_exec,
            default_exec_source: name(self.default_exec_source),
            default_value: self.default_value,
            default_value_source: name(self.default_value_source),
            steps,
            source_names: self.sources.iter().map(|s| s.name.clone()).collect(),
            decision,
        }
    }
}

fn kind_label(kind: ScopeKind) -> &'static str {
    match kind {
        ScopeKind::Pkg => "module name",
        ScopeKind::File => "path",
        ScopeKind::Obj => "object name",
    }
}

fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.context;
        writeln!(f, "code object {:?} in {:?}", c.qualname, c.co_filename)?;
        writeln!(f, "  absolute path: {}", opt(&c.absolute_path))?;
        writeln!(f, "  relative path: {}", opt(&c.relative_path))?;
        writeln!(f, "  module name:   {}", opt(&c.module_name))?;
        writeln!(f, "  object name:   {}", opt(&c.object_name))?;
        writeln!(
            f,
            "defaults: exec {} (from {}), value {} (from {})",
            self.default_exec,
            opt(&self.default_exec_source),
            self.default_value,
            opt(&self.default_value_source),
        )?;
        if self.steps.is_empty() {
            writeln!(f, "no rule matched")?;
        } else {
            writeln!(f, "matching rules in chain order (the last one wins):")?;
        }
        for (n, s) in self.steps.iter().enumerate() {
            write!(
                f,
                "  {}. {} rule {}/{} `{}` on {} `{}`:",
                n + 1,
                s.source_name,
                s.index_in_source + 1,
                s.rules_in_source,
                s.selector,
                kind_label(s.subject_kind),
                s.subject
            )?;
            match s.exec {
                Some(e) => write!(f, " exec {e};")?,
                None => write!(f, " exec unchanged;")?,
            }
            if let Some(v) = s.value_default {
                write!(f, " value default {v};")?;
            }
            write!(f, " value patterns replaced by {}", s.value_patterns)?;
            if let Some(r) = &s.reason {
                write!(f, " ({r})")?;
            }
            writeln!(f)?;
        }
        let d = &self.decision;
        write!(f, "decision: {}", d.exec())?;
        if d.refused_as_synthetic() {
            write!(f, " (the rules said trace; refused: synthetic filename)")?;
        }
        let src = |i: Option<usize>| {
            i.and_then(|i| self.source_names.get(i))
                .map(String::as_str)
                .unwrap_or("-")
        };
        write!(
            f,
            "; value default {} (from {}); {} value pattern(s)",
            d.value_default(),
            src(d.value_default_source()),
            d.value_patterns().len()
        )?;
        if d.value_patterns_discarded() {
            write!(
                f,
                " (patterns of {} discarded: drop set by a later source)",
                src(d.value_patterns_source())
            )?;
        }
        writeln!(f)
    }
}
