//! The divergence taxonomy: every way the two engines can disagree about a code object, with
//! a severity and whether ADR 0016 (module names from `__name__`) predicts it.
//!
//! `docs/divergences.md` is the reader's version of this file; keep the two in step (a test
//! checks that every kind is documented there).

use serde::{Deserialize, Serialize};

/// How much a divergence matters for the rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Cosmetic: labels differ in a way users expect; no filter can change.
    Low,
    /// Labels differ in a way that can break name-based tooling or `pkg` rules.
    Medium,
    /// What is recorded changes, or the primary engine failed.
    High,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Low, Severity::Medium, Severity::High];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// The kind of a divergence. The precedence used to pick one kind when several describe an
/// observation is documented on [`crate::compare()`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DivergenceKind {
    MainScript,
    RunpyAlias,
    RootAmbiguity,
    AliasImport,
    DynamicModule,
    GlobalsMissing,
    GlobalsInvalid,
    LegacyUnresolved,
    BothUnresolved,
    NameReassigned,
    FilterDecisionChanged,
    ShadowError,
    PrimaryError,
    Other,
}

/// The fixed facts about one kind.
#[derive(Clone, Copy, Debug)]
pub struct KindInfo {
    pub kind: DivergenceKind,
    pub severity: Severity,
    /// Whether ADR 0016 predicts this difference (so it is not a regression of the globals
    /// engine). For `filter_decision_changed` the record's own `expected_by_adr` also looks
    /// at the name difference behind it.
    pub expected_by_adr: bool,
    /// One sentence: what it means.
    pub meaning: &'static str,
    /// A realistic case.
    pub example: &'static str,
}

use DivergenceKind as K;
use Severity as S;

const TABLE: [KindInfo; 14] = [
    KindInfo {
        kind: K::MainScript,
        severity: S::Low,
        expected_by_adr: true,
        meaning: "`__name__` is `__main__` (no `__spec__`), legacy named the script from its path",
        example: "`trace`/`profile` or `runpy.run_path(p, run_name=\"__main__\")` running tool.py: globals `__main__`, legacy `tool`",
    },
    KindInfo {
        kind: K::RunpyAlias,
        severity: S::Low,
        expected_by_adr: true,
        meaning: "runpy chose `__name__` (`__main__` with a `__spec__`, `<run_path>`, or a custom run_name on a module body); legacy used the spec or the path",
        example: "`python -m pkg.cli`: globals `__main__`, `__spec__.name` `pkg.cli`, legacy `pkg.cli`",
    },
    KindInfo {
        kind: K::RootAmbiguity,
        severity: S::Medium,
        expected_by_adr: true,
        meaning: "one name is a dotted suffix of the other: legacy took another sys.path root, a stale root or a path-shaped name",
        example: "src layout: globals `mypkg.core`, legacy `src.mypkg.core`",
    },
    KindInfo {
        kind: K::AliasImport,
        severity: S::Medium,
        expected_by_adr: true,
        meaning: "the module is known under an unrelated name: a loader-chosen name or a stale legacy path cache",
        example: "`spec_from_file_location(\"plugin_7\", \"/srv/app/plugins/report.py\")`: globals `plugin_7`, legacy `plugins.report`",
    },
    KindInfo {
        kind: K::DynamicModule,
        severity: S::Low,
        expected_by_adr: true,
        meaning: "no file behind the code (synthetic filename) or globals built by hand (no `__spec__`)",
        example: "`exec(compile(src, \"<string>\", \"exec\"), {\"__name__\": \"jobs.gen\"})`: globals `jobs.gen`, legacy none",
    },
    KindInfo {
        kind: K::GlobalsMissing,
        severity: S::Medium,
        expected_by_adr: true,
        meaning: "the globals have no `__name__` (or could not be read): the globals engine gives `<module>`, legacy found a name",
        example: "`exec(compile(src, \"/srv/app/gen.py\", \"exec\"), {})`: globals none, legacy `gen`",
    },
    KindInfo {
        kind: K::GlobalsInvalid,
        severity: S::Medium,
        expected_by_adr: true,
        meaning: "`__name__` is not a `str` or is blank: the globals engine gives `<module>`, legacy found a name",
        example: "`exec(code, {\"__name__\": 42})` on /srv/app/gen.py: globals none (int), legacy `gen`",
    },
    KindInfo {
        kind: K::LegacyUnresolved,
        severity: S::Low,
        expected_by_adr: true,
        meaning: "legacy found no name for a real file, the globals engine did (ADR 0016 fixes these)",
        example: "relative `co_filename` `app/main.py` (L6.4): globals `app.main`, legacy none",
    },
    KindInfo {
        kind: K::BothUnresolved,
        severity: S::Low,
        expected_by_adr: true,
        meaning: "neither engine found a name: not a disagreement but a blind spot that no `pkg` rule can match",
        example: "`exec(compile(src, \"<string>\", \"exec\"), {})`: both `<module>`",
    },
    KindInfo {
        kind: K::NameReassigned,
        severity: S::Medium,
        expected_by_adr: true,
        meaning: "a function's module `__name__` differs from its `__spec__.name`: the module reassigned `__name__` (spec N.6)",
        example: "pkg/compat.py does `__name__ = \"compat\"`; its functions: globals `compat`, legacy `pkg.compat`",
    },
    KindInfo {
        kind: K::FilterDecisionChanged,
        severity: S::High,
        expected_by_adr: true,
        meaning: "the engines' names lead to different trace/skip decisions: what is recorded changes (spec N.5)",
        example: "`pkg:glob:mypkg.*` traces globals `mypkg.core` but not legacy `src.mypkg.core`",
    },
    KindInfo {
        kind: K::ShadowError,
        severity: S::Medium,
        expected_by_adr: false,
        meaning: "the shadow engine failed; the recording is unaffected but this code object has no evidence",
        example: "legacy as shadow hits an unreadable `sys.modules` entry and reports an error",
    },
    KindInfo {
        kind: K::PrimaryError,
        severity: S::High,
        expected_by_adr: false,
        meaning: "the primary engine failed, so the recorded name came from its error path",
        example: "globals engine (primary) raises while reading `f_globals`",
    },
    KindInfo {
        kind: K::Other,
        severity: S::Medium,
        expected_by_adr: false,
        meaning: "a difference no other kind explains, including a globals engine answer that disagrees with `__name__` itself",
        example: "`__name__` is `pkg.mod` but the globals engine answered none",
    },
];

impl DivergenceKind {
    /// Every kind, in declaration order.
    pub const ALL: [DivergenceKind; 14] = [
        K::MainScript,
        K::RunpyAlias,
        K::RootAmbiguity,
        K::AliasImport,
        K::DynamicModule,
        K::GlobalsMissing,
        K::GlobalsInvalid,
        K::LegacyUnresolved,
        K::BothUnresolved,
        K::NameReassigned,
        K::FilterDecisionChanged,
        K::ShadowError,
        K::PrimaryError,
        K::Other,
    ];

    /// The label value used in metrics and files.
    pub fn as_str(self) -> &'static str {
        match self {
            K::MainScript => "main_script",
            K::RunpyAlias => "runpy_alias",
            K::RootAmbiguity => "root_ambiguity",
            K::AliasImport => "alias_import",
            K::DynamicModule => "dynamic_module",
            K::GlobalsMissing => "globals_missing",
            K::GlobalsInvalid => "globals_invalid",
            K::LegacyUnresolved => "legacy_unresolved",
            K::BothUnresolved => "both_unresolved",
            K::NameReassigned => "name_reassigned",
            K::FilterDecisionChanged => "filter_decision_changed",
            K::ShadowError => "shadow_error",
            K::PrimaryError => "primary_error",
            K::Other => "other",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The kind's fixed facts.
    pub fn info(self) -> &'static KindInfo {
        &TABLE[self.index()]
    }

    pub fn severity(self) -> Severity {
        self.info().severity
    }

    pub fn expected_by_adr(self) -> bool {
        self.info().expected_by_adr
    }
}

impl std::fmt::Display for DivergenceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_indexed_by_kind() {
        for (i, k) in DivergenceKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
            assert_eq!(TABLE[i].kind, *k, "TABLE out of order at {i}");
        }
    }

    #[test]
    fn serde_names_match_label_values() {
        for k in DivergenceKind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
    }

    #[test]
    fn filter_decision_changed_is_high() {
        assert_eq!(
            DivergenceKind::FilterDecisionChanged.severity(),
            Severity::High
        );
    }

    #[test]
    fn every_kind_is_documented() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/divergences.md"
        ))
        .expect("docs/divergences.md");
        for info in TABLE {
            let heading = format!("### `{}`", info.kind.as_str());
            let at = doc
                .find(&heading)
                .unwrap_or_else(|| panic!("docs/divergences.md lacks {heading}"));
            let section = &doc[at..];
            let end = section[1..].find("\n### ").map_or(section.len(), |e| e + 1);
            let section = &section[..end];
            let sev = format!("Severity: **{}**", info.severity.as_str());
            assert!(section.contains(&sev), "{heading}: wants `{sev}`");
            let exp = if info.expected_by_adr {
                "Expected by ADR 0016: **yes**"
            } else {
                "Expected by ADR 0016: **no**"
            };
            assert!(section.contains(exp), "{heading}: wants `{exp}`");
        }
    }
}
