//! Value policy (spec F6): value patterns of a rule, grouped by kind, and the per-event
//! lookup. Everything here is built at load time; the lookup does not allocate.

use super::model::{ValueAction, ValueKind};
use super::selector::Selector;
use std::sync::Arc;

/// One `[[scope.rules.value_patterns]]` entry.
#[derive(Debug, Clone)]
pub struct ValuePattern {
    pub(crate) selector: Selector,
    pub(crate) action: ValueAction,
    pub(crate) reason: Option<Arc<str>>,
    pub(crate) source: usize,
}

impl ValuePattern {
    pub fn selector(&self) -> &Selector {
        &self.selector
    }
    pub fn action(&self) -> ValueAction {
        self.action
    }
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }
    /// Index of the source (in chain order) this pattern comes from.
    pub fn source_index(&self) -> usize {
        self.source
    }
}

/// The value patterns of one rule, in file order within each kind. All patterns of a rule
/// share the rule's source, which is what the F6 drop-discard rule compares.
#[derive(Debug, Default)]
pub struct PatternSet {
    by_kind: [Box<[ValuePattern]>; 5],
    len: usize,
}

impl PatternSet {
    pub(crate) fn new(patterns: Vec<ValuePattern>) -> PatternSet {
        let len = patterns.len();
        let mut by_kind: [Vec<ValuePattern>; 5] = Default::default();
        for p in patterns {
            if let super::model::SelectorKind::Value(kind) = p.selector.kind() {
                by_kind[kind.index()].push(p);
            }
        }
        PatternSet {
            by_kind: by_kind.map(Vec::into_boxed_slice),
            len,
        }
    }

    /// Number of patterns, all kinds together.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Patterns of one kind, in file order.
    pub fn of_kind(&self, kind: ValueKind) -> &[ValuePattern] {
        &self.by_kind[kind.index()]
    }

    /// All patterns, grouped by kind (local, global, arg, ret, attr), file order within a kind.
    pub fn iter(&self) -> impl Iterator<Item = &ValuePattern> {
        self.by_kind.iter().flat_map(|k| k.iter())
    }

    /// F6: the first pattern of `kind` whose selector matches `identifier`.
    #[inline]
    pub fn first_match(&self, kind: ValueKind, identifier: &str) -> Option<&ValuePattern> {
        self.by_kind[kind.index()]
            .iter()
            .find(|p| p.selector.matches(identifier))
    }
}
