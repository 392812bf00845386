//! Rule evaluation (spec F5), the value-policy entry point (F6) and the synthetic-filename
//! gate (F7).

use super::chain::{FilterChain, ScopeRule};
use super::explain::ExplainStep;
use super::model::{Exec, ScopeKind, ValueAction, ValueKind};
use super::scope::ScopeContext;
use super::values::{PatternSet, ValuePattern};
use std::sync::Arc;

/// The rule reported as "matched": the last rule that matched (F5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedRule {
    /// Index of the rule's source in chain order (0 is the builtin when it is loaded).
    pub source_index: usize,
    /// Index of the rule in [`FilterChain::rules`].
    pub rule_index: usize,
    /// Index of the rule inside its own file.
    pub index_in_source: usize,
    /// The selector as written.
    pub selector: Arc<str>,
    /// The rule's `reason`.
    pub reason: Option<Arc<str>>,
}

/// The filter decision for one code object. Cache it per code object; cloning costs a few
/// reference-count increments, and [`Decision::value_action`] does not allocate.
#[derive(Debug, Clone)]
pub struct Decision {
    exec: Exec,
    rules_exec: Exec,
    synthetic_refused: bool,
    value_default: ValueAction,
    value_default_source: Option<usize>,
    patterns: Arc<PatternSet>,
    patterns_source: Option<usize>,
    patterns_discarded: bool,
    matched: Option<MatchedRule>,
}

impl Decision {
    /// Final decision: the rules' decision, then the F7 gate (a trace decision is refused for a
    /// synthetic filename).
    pub fn exec(&self) -> Exec {
        self.exec
    }

    /// `exec() == Exec::Trace`.
    pub fn is_traced(&self) -> bool {
        self.exec == Exec::Trace
    }

    /// The decision of the defaults and rules alone, before the synthetic-filename gate.
    pub fn rules_exec(&self) -> Exec {
        self.rules_exec
    }

    /// True when the rules said `trace` but the filename is synthetic (F7).
    pub fn refused_as_synthetic(&self) -> bool {
        self.synthetic_refused
    }

    /// The value default in force (F5), after all matching rules.
    pub fn value_default(&self) -> ValueAction {
        self.value_default
    }

    /// The source that set the value default (the chain default's source, or the last
    /// matching rule with a `value_default`). `None` only for an empty chain.
    pub fn value_default_source(&self) -> Option<usize> {
        self.value_default_source
    }

    /// The value patterns in force: those of the last matching rule, or none when the F6
    /// drop rule discarded them.
    pub fn value_patterns(&self) -> &PatternSet {
        &self.patterns
    }

    /// The source of the rule whose patterns were taken (before any drop discard).
    pub fn value_patterns_source(&self) -> Option<usize> {
        self.patterns_source
    }

    /// True when the value default is `drop`, set by a source later than the one the
    /// patterns came from, so the patterns were discarded (F6).
    pub fn value_patterns_discarded(&self) -> bool {
        self.patterns_discarded
    }

    /// The last matching rule, if any.
    pub fn matched_rule(&self) -> Option<&MatchedRule> {
        self.matched.as_ref()
    }

    /// F6: the action for a value of `kind` named `identifier`: the first pattern of that kind
    /// whose selector matches, else the value default. Does not allocate.
    #[inline]
    pub fn value_action(&self, kind: ValueKind, identifier: &str) -> ValueAction {
        match self.patterns.first_match(kind, identifier) {
            Some(p) => p.action,
            None => self.value_default,
        }
    }

    /// The pattern that decides `identifier`, if one does (for diagnostics).
    pub fn value_pattern_for(&self, kind: ValueKind, identifier: &str) -> Option<&ValuePattern> {
        self.patterns.first_match(kind, identifier)
    }
}

impl ScopeRule {
    /// F5: does this rule match the context? A missing subject never matches.
    pub fn matches(&self, ctx: &ScopeContext) -> bool {
        self.subject(ctx).is_some_and(|s| self.selector.matches(s))
    }

    /// The string this rule's selector tests for `ctx`.
    pub fn subject<'c>(&self, ctx: &'c ScopeContext) -> Option<&'c str> {
        match self.scope_kind {
            ScopeKind::Pkg => ctx.module_name.as_deref(),
            ScopeKind::File => ctx.file_subject(),
            ScopeKind::Obj => ctx.object_name.as_deref(),
        }
    }
}

impl FilterChain {
    /// Spec F5 + F6 + the F7 gate: start from the chain defaults and go through all rules in
    /// chain order; every matching rule replaces `exec` (if set), the value default and its
    /// source (if set) and the value patterns (always, even with none), and becomes the
    /// matched rule. The last matching rule wins.
    pub fn evaluate(&self, ctx: &ScopeContext) -> Decision {
        self.run(ctx, None)
    }

    pub(crate) fn run(
        &self,
        ctx: &ScopeContext,
        mut steps: Option<&mut Vec<ExplainStep>>,
    ) -> Decision {
        let mut exec = self.default_exec;
        let mut value_default = self.default_value;
        let mut value_default_source = self.default_value_source;
        let mut patterns = &self.empty_patterns;
        let mut patterns_source = None;
        let mut matched: Option<(usize, &ScopeRule)> = None;

        for (rule_index, rule) in self.rules.iter().enumerate() {
            let Some(subject) = rule.subject(ctx) else {
                continue;
            };
            if !rule.selector.matches(subject) {
                continue;
            }
            if let Some(e) = rule.exec {
                exec = e;
            }
            if let Some(v) = rule.value_default {
                value_default = v;
                value_default_source = Some(rule.source);
            }
            patterns = &rule.patterns;
            patterns_source = Some(rule.source);
            matched = Some((rule_index, rule));
            if let Some(steps) = steps.as_deref_mut() {
                steps.push(ExplainStep::new(self, rule_index, rule, subject));
            }
        }

        // F6: a `drop` default discards the patterns of sources earlier than the one that set
        // it. All patterns of a rule share its source, so the list goes as a whole.
        let patterns_discarded = value_default == ValueAction::Drop
            && match (patterns_source, value_default_source) {
                (Some(p), Some(d)) => p < d && !patterns.is_empty(),
                _ => false,
            };
        let patterns = if patterns_discarded {
            self.empty_patterns.clone()
        } else {
            patterns.clone()
        };

        let synthetic_refused = exec == Exec::Trace && ctx.synthetic;
        Decision {
            exec: if synthetic_refused { Exec::Skip } else { exec },
            rules_exec: exec,
            synthetic_refused,
            value_default,
            value_default_source,
            patterns,
            patterns_source,
            patterns_discarded,
            matched: matched.map(|(rule_index, rule)| MatchedRule {
                source_index: rule.source,
                rule_index,
                index_in_source: rule.index_in_source,
                selector: rule.selector.text_arc().clone(),
                reason: rule.reason.clone(),
            }),
        }
    }
}
