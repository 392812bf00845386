//! The offline filter engine (`OfflineEngine`, used by `ct-rollout fix-filters`) decides
//! exactly as the chain the recorder loads from the same files: same decisions, same
//! deciding rules, same `file:` subjects (project roots derived from the paths).

use ct_recorder::filters::{ChainBuilder, Exec, OfflineEngine};
use ct_reports::fix_filters::{ChainText, FilterEngine, Query};

const PROJECT: &str = r#"
[meta]
name = "proj"
version = 1

[scope]
default_exec = "trace"
default_value_action = "allow"

[[scope.rules]]
selector = "pkg:src.shop.*"
exec = "skip"

[[scope.rules]]
selector = "file:tools/*.py"
exec = "skip"

[[scope.rules]]
selector = "obj:glob:shop.pricing.secret*"
exec = "skip"
"#;

#[test]
fn offline_decisions_equal_the_loaded_chains() {
    let dir = tempfile::tempdir().unwrap();
    let proj = dir.path().join("proj");
    std::fs::create_dir_all(proj.join(".codetracer")).unwrap();
    let file = proj.join(".codetracer/trace-filter.toml");
    std::fs::write(&file, PROJECT).unwrap();
    let loaded = ChainBuilder::new().builtin().file(&file).build().unwrap();

    let at = |rel: &str| proj.join(rel).display().to_string();
    let queries = vec![
        (
            at("src/shop/pricing.py"),
            Some("src.shop.pricing"),
            "<module>",
        ),
        (
            at("src/shop/pricing.py"),
            Some("shop.pricing"),
            "secret_price",
        ),
        (at("src/shop/pricing.py"), Some("shop.pricing"), "price"),
        (at("tools/run.py"), Some("__main__"), "<module>"),
        (at("app.py"), None, "<module>"),
        (
            "/usr/lib/python3.11/json/__init__.py".to_owned(),
            Some("json"),
            "<module>",
        ),
        ("<string>".to_owned(), Some("x"), "<module>"),
    ];
    let queries: Vec<Query> = queries
        .into_iter()
        .map(|(filename, module, qualname)| Query {
            filename,
            module_name: module.map(str::to_owned),
            qualname: qualname.to_owned(),
        })
        .collect();
    let chain = [
        ChainText::Builtin,
        ChainText::File {
            path: file.clone(),
            text: PROJECT.to_owned(),
        },
    ];
    let verdicts = OfflineEngine.evaluate(&chain, &queries).unwrap();
    let mut skipped = 0;
    for (q, v) in queries.iter().zip(&verdicts) {
        let ctx = loaded.scope_context(&q.filename, q.module_name.as_deref(), &q.qualname);
        let d = loaded.evaluate(&ctx);
        let exec = match d.exec() {
            Exec::Trace => ct_shadow::Exec::Trace,
            Exec::Skip => ct_shadow::Exec::Skip,
        };
        assert_eq!(v.exec, exec, "{q:?}");
        assert_eq!(
            v.rule,
            d.matched_rule()
                .map(|m| (m.source_index, m.index_in_source)),
            "{q:?}"
        );
        assert_eq!(v.file_subject.as_deref(), ctx.file_subject(), "{q:?}");
        skipped += usize::from(exec == ct_shadow::Exec::Skip);
    }
    // The project's rules and the builtin's standard-library rule each decided something.
    assert_eq!(verdicts[0].exec, ct_shadow::Exec::Skip);
    assert_eq!(verdicts[0].exec_rule, Some((1, 0)));
    assert_eq!(verdicts[1].exec_rule, Some((1, 2)));
    assert_eq!(verdicts[3].file_subject.as_deref(), Some("tools/run.py"));
    assert_eq!(verdicts[3].exec_rule, Some((1, 1)));
    assert_eq!(verdicts[5].exec_rule, Some((0, 0)));
    assert_eq!(skipped, 5, "{verdicts:?}");
}

#[test]
fn an_invalid_filter_text_is_the_loaders_error() {
    let chain = [ChainText::File {
        path: "/p/.codetracer/trace-filter.toml".into(),
        text: "[meta]\nname = \"p\"\nversion = 1\n[scope]\ndefault_exec = \"sometimes\"\ndefault_value_action = \"allow\"\n".into(),
    }];
    let err = OfflineEngine.evaluate(&chain, &[]).unwrap_err();
    assert!(err.contains("default_exec"), "{err}");
}
