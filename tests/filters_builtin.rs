//! Spec F7: the builtin filter's rules, evaluated the way the legacy pipeline feeds them
//! (relative path from the chain, F4.3 module name) unless a test says otherwise.

mod filters_common;

use ct_recorder::filters::*;
use filters_common::*;

/// Decision for a file with the module name the legacy pipeline would give it when the
/// resolver has no answer.
fn decide(chain: &FilterChain, file: &str) -> Decision {
    let rel = chain.relative_path(file);
    let name = legacy_filter_module_name(rel.as_deref(), None);
    chain.evaluate(&chain.scope_context(file, name.as_deref(), "f"))
}

fn decide_named(chain: &FilterChain, file: &str, module: &str) -> Decision {
    chain.evaluate(&chain.scope_context(file, Some(module), "f"))
}

#[test]
fn f7_builtin_rules_are_in_the_specified_order() {
    let c = FilterChain::builtin_only();
    let sel: Vec<(&str, Option<Exec>)> = c
        .rules()
        .iter()
        .map(|r| (r.selector().text(), r.exec()))
        .collect();
    assert_eq!(sel.len(), 7);
    assert_eq!(sel[0].1, Some(Exec::Skip));
    assert_eq!(sel[1].1, Some(Exec::Trace));
    assert_eq!(sel[2].1, Some(Exec::Skip));
    assert_eq!(sel[3].1, Some(Exec::Skip));
    assert_eq!(
        (sel[4].0, sel[4].1),
        ("pkg:literal:builtins", Some(Exec::Skip))
    );
    assert_eq!(
        (sel[5].0, sel[5].1),
        ("pkg:glob:*_distutils_hack*", Some(Exec::Skip))
    );
    assert_eq!((sel[6].0, sel[6].1), ("pkg:glob:*", None));
    assert_eq!(c.default_exec(), Exec::Trace);
    assert_eq!(c.default_value_action(), (ValueAction::Allow, Some(0)));
    assert_eq!(c.io(), &IoConfig::default());
}

#[test]
fn f7_builtin_1_skips_the_standard_library() {
    let c = FilterChain::builtin_only();
    for f in [
        "/usr/lib/python3.11/json/decoder.py",
        "/usr/local/lib/python3.12/collections/__init__.py",
        "/root/.pyenv/versions/3.11.7/lib/python3.11/re/_parser.py",
        "/opt/py/Lib/python3.11/os.py",
        "/venv/lib/python3.11/encodings/utf_8.py",
    ] {
        let d = decide(&c, f);
        assert_eq!(d.exec(), Exec::Skip, "{f}");
        // The catch-all matches last, so it is the reported rule, but it sets no exec:
        // rule 1 decided.
        assert_eq!(d.matched_rule().unwrap().index_in_source, 6, "{f}");
        let rel = c.relative_path(f);
        let name = legacy_filter_module_name(rel.as_deref(), None);
        let steps = c.explain(&c.scope_context(f, name.as_deref(), "f")).steps;
        let setters: Vec<usize> = steps
            .iter()
            .filter(|s| s.exec.is_some())
            .map(|s| s.index_in_source)
            .collect();
        assert_eq!(setters, [0], "{f}");
    }
}

#[test]
fn f7_builtin_1_requires_a_separator_before_lib() {
    let c = FilterChain::builtin_only();
    // With the builtin's empty root, `/lib/python3.11/x.py` becomes `lib/python3.11/x.py`:
    // nothing before `lib`, so the rule does not match (Quirk).
    assert_eq!(decide(&c, "/lib/python3.11/os.py").exec(), Exec::Trace);
    assert_eq!(
        decide(&c, "/usr/mylib/python3.11/os.py").exec(),
        Exec::Trace
    );
    assert_eq!(
        decide(&c, "/usr/lib/python3/os.py").exec(),
        Exec::Trace,
        "X.Y required"
    );
    assert_eq!(
        decide(&c, "/usr/lib/python3.11").exec(),
        Exec::Trace,
        "a separator after X.Y required"
    );
    // A project whose root sits right above `lib/` sees `lib/python3.11/...` too.
    let c = chain(true, &[("/srv/app", &filter(""))]);
    assert_eq!(
        decide(&c, "/srv/app/lib/python3.11/os.py").exec(),
        Exec::Trace
    );
    assert_eq!(
        decide(&c, "/srv/app/.venv/lib/python3.11/os.py").exec(),
        Exec::Skip
    );
}

#[test]
fn f7_builtin_2_re_allows_site_packages_below_the_standard_library() {
    let c = FilterChain::builtin_only();
    let d = decide(
        &c,
        "/home/ana/.venv/lib/python3.11/site-packages/requests/api.py",
    );
    assert_eq!(d.exec(), Exec::Trace);
    // Project venv: the relative path keeps a separator before `lib`.
    let c = chain(true, &[("/home/ana/app", &filter(""))]);
    let f = "/home/ana/app/.venv/lib/python3.11/site-packages/requests/api.py";
    assert_eq!(
        c.relative_path(f).as_deref(),
        Some(".venv/lib/python3.11/site-packages/requests/api.py")
    );
    assert_eq!(decide(&c, f).exec(), Exec::Trace);
    // `dist-packages` is not re-allowed.
    assert_eq!(
        decide(
            &FilterChain::builtin_only(),
            "/usr/lib/python3.11/dist-packages/x.py"
        )
        .exec(),
        Exec::Skip
    );
}

#[test]
fn f7_builtin_3_skips_the_virtualenv_helper() {
    let c = FilterChain::builtin_only();
    let d = decide(
        &c,
        "/home/ana/.venv/lib/python3.11/site-packages/_virtualenv.py",
    );
    assert_eq!(d.exec(), Exec::Skip);
    let f = "/home/ana/.venv/lib/python3.11/site-packages/_virtualenv.py";
    let steps = c
        .explain(&c.scope_context(f, Some("_virtualenv"), "f"))
        .steps;
    let last_exec = steps.iter().rev().find(|s| s.exec.is_some()).unwrap();
    assert_eq!(
        last_exec.reason.as_deref(),
        Some("virtualenv start-up helper")
    );
    assert_eq!(
        decide(
            &c,
            "/home/ana/.venv/lib/python3.11/site-packages/my_virtualenv.py"
        )
        .exec(),
        Exec::Trace
    );
}

#[test]
fn f7_builtin_4_skips_concurrency_and_import_machinery_with_submodules() {
    let c = FilterChain::builtin_only();
    for m in [
        "asyncio",
        "asyncio.events",
        "selectors",
        "concurrent",
        "concurrent.futures.thread",
        "importlib",
        "importlib._bootstrap_external",
        "threading",
        "multiprocessing",
        "multiprocessing.pool",
    ] {
        assert_eq!(decide_named(&c, "/x/m.py", m).exec(), Exec::Skip, "{m}");
    }
    for m in [
        "asynciox",
        "myasyncio",
        "app.asyncio",
        "threadingx.y",
        "importlib_metadata",
    ] {
        assert_eq!(decide_named(&c, "/x/m.py", m).exec(), Exec::Trace, "{m}");
    }
}

#[test]
fn f7_builtin_4_does_not_see_path_shaped_legacy_names() {
    // Under the legacy pipeline a stdlib file outside any project is named after its path,
    // so rule 4 does not match; rule 1 skips it anyway.
    let c = FilterChain::builtin_only();
    let f = "/usr/lib/python3.11/threading.py";
    let rel = c.relative_path(f);
    let name = legacy_filter_module_name(rel.as_deref(), Some("threading")).unwrap();
    assert_eq!(name, "usr.lib.python3.11.threading");
    let d = c.evaluate(&c.scope_context(f, Some(&name), "Thread.run"));
    assert_eq!(d.exec(), Exec::Skip);
    assert_eq!(d.matched_rule().unwrap().index_in_source, 6);
}

#[test]
fn f7_builtin_5_skips_builtins_and_the_distutils_hack() {
    let c = FilterChain::builtin_only();
    assert_eq!(decide_named(&c, "/x.py", "builtins").exec(), Exec::Skip);
    assert_eq!(decide_named(&c, "/x.py", "builtins.x").exec(), Exec::Trace);
    assert_eq!(
        decide_named(&c, "/x.py", "_distutils_hack").exec(),
        Exec::Skip
    );
    assert_eq!(
        decide_named(&c, "/x.py", "_distutils_hack.override").exec(),
        Exec::Skip
    );
    assert_eq!(
        decide_named(&c, "/x.py", "setuptools._distutils_hack_x").exec(),
        Exec::Skip
    );
}

#[test]
fn f7_builtin_6_catch_all_redacts_sensitive_identifiers_for_all_value_kinds() {
    let c = FilterChain::builtin_only();
    let d = decide_named(&c, "/home/ana/app/main.py", "main");
    assert_eq!(d.exec(), Exec::Trace);
    assert_eq!(d.matched_rule().unwrap().index_in_source, 6);
    for kind in ValueKind::ALL {
        for id in [
            "password",
            "db_passwd",
            "API_KEY",
            "apiKey",
            "private-key",
            "auth_token",
            "SessionId",
            "cookie",
            "jwt",
            "credentials",
            "card_number",
            "cvv",
            "ssh_key",
            "secret",
        ] {
            assert_eq!(
                d.value_action(kind, id),
                ValueAction::Redact,
                "{kind:?} {id}"
            );
        }
        for id in ["user", "count", "items", "result", "name", "value"] {
            assert_eq!(
                d.value_action(kind, id),
                ValueAction::Allow,
                "{kind:?} {id}"
            );
        }
    }
}

#[test]
fn f7_builtin_6_needs_a_module_name() {
    let c = FilterChain::builtin_only();
    let d = c.evaluate(&c.scope_context("/x/m.py", None, "f"));
    assert!(d.matched_rule().is_none());
    assert_eq!(
        d.value_action(ValueKind::Local, "password"),
        ValueAction::Allow
    );
}

#[test]
fn f7_builtin_never_traces_synthetic_code() {
    let c = FilterChain::builtin_only();
    for f in ["<frozen importlib._bootstrap>", "<string>", "<stdin>"] {
        let rel = c.relative_path(f);
        let name = legacy_filter_module_name(rel.as_deref(), None);
        let d = c.evaluate(&c.scope_context(f, name.as_deref(), "<module>"));
        assert_eq!(d.exec(), Exec::Skip, "{f}");
    }
}

#[test]
fn f7_builtin_is_valid_and_parses_like_any_source() {
    let c = FilterChain::builder()
        .inline("copy.toml", "", BUILTIN_TOML)
        .build()
        .unwrap();
    assert_eq!(c.rules().len(), FilterChain::builtin_only().rules().len());
    assert_eq!(c.sources()[0].meta().name, "builtin-default");
}
