//! `ct_reports::fix_filters::plan` with the recorder's own filter engine, on shadow runs
//! written by `ct-shadow` from decisions of the real filter chain: the proposals for rules
//! whose last match sets no `exec`, for decisions of an earlier `file:` rule, and the
//! re-evaluation of every record. (The CLI and real recordings: tests/python.)

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ct_recorder::filters::{ChainBuilder, Exec, FilterChain, OfflineEngine};
use ct_reports::fix_filters;
use ct_shadow::{
    Engine, EngineResult, FilterOutcome, FilterSourceRef, GlobalsName, Metrics, Observation,
    RecorderInfo, RuleRef, RunMeta, ShadowConfig, ShadowSession,
};
use sha2::{Digest, Sha256};

const HEAD: &str = "[meta]\nname = \"proj\"\nversion = 1\n\n[scope]\ndefault_exec = \"trace\"\ndefault_value_action = \"allow\"\n";

struct Project {
    _dir: tempfile::TempDir,
    root: PathBuf,
    filter: PathBuf,
}

fn project(rules: &str) -> Project {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("proj");
    std::fs::create_dir_all(root.join(".codetracer")).unwrap();
    let filter = root.join(".codetracer/trace-filter.toml");
    std::fs::write(&filter, format!("{HEAD}{rules}")).unwrap();
    Project {
        _dir: dir,
        root,
        filter,
    }
}

fn outcome(chain: &FilterChain, file: &str, module: &str, qualname: &str) -> FilterOutcome {
    let ctx = chain.scope_context(file, Some(module), qualname);
    let d = chain.evaluate(&ctx);
    FilterOutcome {
        exec: match d.exec() {
            Exec::Trace => ct_shadow::Exec::Trace,
            Exec::Skip => ct_shadow::Exec::Skip,
        },
        rule: d.matched_rule().map(|m| RuleRef {
            source: chain.sources()[m.source_index]
                .path()
                .map_or_else(|| "<builtin>".to_owned(), |p| p.display().to_string()),
            index: m.index_in_source,
            selector: m.selector.to_string(),
        }),
        module_name: Some(module.to_owned()),
    }
}

/// A shadow run (primary legacy) of code objects `(relative file, qualname, legacy filter
/// name, globals filter name)`, decided by the project's real chain.
fn shadow_run(p: &Project, run: &Path, cases: &[(&str, &str, &str, &str)]) {
    let chain = ChainBuilder::new()
        .builtin()
        .file(&p.filter)
        .build()
        .unwrap();
    let metrics = Arc::new(Metrics::new(&RecorderInfo {
        version: "test".into(),
        primary: Engine::Legacy,
        shadow: Some(Engine::Globals),
    }));
    let session = ShadowSession::start(ShadowConfig::new(run), metrics).unwrap();
    let roots = session.register_roots(&[p.root.display().to_string()]);
    for (rel, qualname, legacy, globals) in cases {
        let file = p.root.join(rel).display().to_string();
        let mut primary = EngineResult::named(Engine::Legacy, *legacy);
        primary.filter = Some(outcome(&chain, &file, legacy, qualname));
        let mut shadow = EngineResult::named(Engine::Globals, *globals);
        shadow.filter = Some(outcome(&chain, &file, globals, qualname));
        session.observe(&Observation {
            filename: file,
            qualname: qualname.to_string(),
            is_module: *qualname == "<module>",
            globals_name: GlobalsName::str(*globals),
            spec_name: None,
            sys_path_roots: roots.clone(),
            primary,
            shadow,
            thread_id: 1,
            first_seen: 0.0,
        });
    }
    let sources = chain
        .sources()
        .iter()
        .map(|s| FilterSourceRef {
            source: s
                .path()
                .map_or_else(|| "<builtin>".to_owned(), |p| p.display().to_string()),
            builtin: s.path().is_none(),
            sha256: s.sha256().to_owned(),
        })
        .collect();
    session
        .finish(&RunMeta {
            run_id: "run-1".into(),
            filter_chain: sources,
            ..RunMeta::default()
        })
        .unwrap();
}

fn plan(p: &Project, run: &Path) -> fix_filters::FixPlan {
    let evidence = ct_reports::load_evidence(&[run]).unwrap();
    fix_filters::plan(&evidence, &OfflineEngine, &p.root).unwrap()
}

#[test]
fn the_selector_comes_from_the_rule_that_set_exec_not_a_later_catch_all() {
    // Rule 1 matches everything (a value default, no exec): it is the last match for both
    // names, so the new rule goes after it, but its selector is adapted from rule 0.
    let p = project(
        "\n[[scope.rules]]\nselector = \"pkg:src.shop.*\"\nexec = \"skip\"\n\n\
         [[scope.rules]]\nselector = \"pkg:glob:*\"\nvalue_default = \"redact\"\n",
    );
    let run = p.root.join("run");
    shadow_run(
        &p,
        &run,
        &[
            (
                "src/shop/pricing.py",
                "<module>",
                "src.shop.pricing",
                "shop.pricing",
            ),
            (
                "src/shop/pricing.py",
                "price",
                "src.shop.pricing",
                "shop.pricing",
            ),
            ("src/shop/tax.py", "<module>", "src.shop.tax", "shop.tax"),
        ],
    );
    let plan = plan(&p, &run);
    assert_eq!(plan.changes.len(), 3);
    assert_eq!(plan.proposals.len(), 1, "one rule covers the package");
    let proposal = &plan.proposals[0];
    assert_eq!(proposal.selector, "pkg:glob:shop.*");
    assert_eq!(proposal.anchor, 1);
    assert_eq!(plan.remaining(), 0);
    let text = String::from_utf8(plan.change_set.changes[0].new.clone().unwrap()).unwrap();
    let rules: toml::Value = toml::from_str(&text).unwrap();
    let rules = rules["scope"]["rules"].as_array().unwrap();
    assert_eq!(rules[2]["selector"].as_str(), Some("pkg:glob:shop.*"));
    // A copy of the last match (its value default) with the decision made explicit.
    assert_eq!(rules[2]["value_default"].as_str(), Some("redact"));
    assert_eq!(rules[2]["exec"].as_str(), Some("skip"));
    // Nothing written by plan().
    assert_eq!(
        std::fs::read_to_string(&p.filter).unwrap(),
        format!(
            "{HEAD}\n[[scope.rules]]\nselector = \"pkg:src.shop.*\"\nexec = \"skip\"\n\n\
             [[scope.rules]]\nselector = \"pkg:glob:*\"\nvalue_default = \"redact\"\n"
        )
    );
}

#[test]
fn a_later_rule_matching_only_the_globals_name_gets_an_exception() {
    // A file rule skips tools/, a later pkg rule re-traces `shop.*`: the globals name of a
    // file under tools/ matches it, legacy's does not.
    let p = project(
        "\n[[scope.rules]]\nselector = \"file:tools/**\"\nexec = \"skip\"\n\n\
         [[scope.rules]]\nselector = \"obj:glob:shop.*.main\"\nexec = \"trace\"\n",
    );
    let run = p.root.join("run");
    shadow_run(
        &p,
        &run,
        &[("tools/shop/run.py", "main", "tools.shop.run", "shop.run")],
    );
    let plan = plan(&p, &run);
    assert_eq!(plan.changes.len(), 1);
    let proposal = &plan.proposals[0];
    assert_eq!(proposal.anchor, 1);
    assert_eq!(proposal.selector, "obj:literal:shop.run.main");
    assert_eq!(proposal.exec, ct_shadow::Exec::Skip);
    assert_eq!(plan.remaining(), 0);
}

#[test]
fn records_that_no_longer_change_are_not_proposed_again() {
    let p = project("\n[[scope.rules]]\nselector = \"pkg:src.shop.*\"\nexec = \"skip\"\n");
    let run = p.root.join("run");
    shadow_run(
        &p,
        &run,
        &[(
            "src/shop/pricing.py",
            "<module>",
            "src.shop.pricing",
            "shop.pricing",
        )],
    );
    let first = plan(&p, &run);
    assert_eq!(first.proposals.len(), 1);
    first.change_set.apply().unwrap().finish();
    let again = plan(&p, &run);
    assert!(again.proposals.is_empty() && again.change_set.is_empty());
    assert_eq!(again.remaining(), 0);
    let sha = format!("{:x}", Sha256::digest(std::fs::read(&p.filter).unwrap()));
    assert!(
        again
            .notes
            .iter()
            .any(|n| n.contains("changed since run run-1")),
        "{:?} {sha}",
        again.notes
    );
}
