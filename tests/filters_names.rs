//! Spec Part N5: the module name `pkg`/`obj` selectors see under the globals engine, and
//! decisions that flip between the legacy (F4.3) and globals names.

mod filters_common;

use ct_recorder::filters::*;
use filters_common::*;
use std::path::Path;

const APP: &str = "/home/ana/app";

#[test]
fn n5_valid_dunder_name_is_used() {
    assert_eq!(
        globals_filter_module_name(
            Some("mypkg.core"),
            Some("src/mypkg/core.py"),
            "/home/ana/app/src/mypkg/core.py"
        )
        .as_deref(),
        Some("mypkg.core")
    );
    assert_eq!(
        globals_filter_module_name(Some("  mypkg.core \n"), None, "/x.py").as_deref(),
        Some("mypkg.core")
    );
    assert_eq!(
        globals_filter_module_name(Some("__main__"), Some("tools/run.py"), "/x/tools/run.py")
            .as_deref(),
        Some("__main__")
    );
}

#[test]
fn n5_invalid_dunder_name_falls_back_to_the_validated_relative_name() {
    for bad in ["<run_path>", "my-mod", "", "   ", "a..b", "modé"] {
        assert_eq!(
            globals_filter_module_name(
                Some(bad),
                Some("src/mypkg/core.py"),
                "/nowhere/src/mypkg/core.py"
            )
            .as_deref(),
            Some("src.mypkg.core"),
            "{bad:?}"
        );
    }
    assert_eq!(
        globals_filter_module_name(None, Some("tools/run.py"), "/nowhere/tools/run.py").as_deref(),
        Some("tools.run")
    );
}

#[test]
fn n5_invalid_relative_name_falls_back_to_the_init_py_walk() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("my-proj");
    write(&root, "pkg/__init__.py", "");
    write(&root, "pkg/sub/__init__.py", "");
    let module = write(&root, "pkg/sub/mod.py", "");
    let abs = module.to_str().unwrap();
    // `my-proj/pkg/sub/mod.py` converts to `my-proj.pkg.sub.mod`: not valid.
    assert_eq!(
        globals_filter_module_name(Some("<run_path>"), Some("my-proj/pkg/sub/mod.py"), abs)
            .as_deref(),
        Some("pkg.sub.mod")
    );
    assert_eq!(
        globals_filter_module_name(None, None, abs).as_deref(),
        Some("pkg.sub.mod")
    );
    let init = root.join("pkg/sub/__init__.py");
    assert_eq!(
        globals_filter_module_name(None, None, init.to_str().unwrap()).as_deref(),
        Some("pkg.sub")
    );
    // A module outside any package is its stem.
    let lone = write(&root, "tool.py", "");
    assert_eq!(
        globals_filter_module_name(None, None, lone.to_str().unwrap()).as_deref(),
        Some("tool")
    );
}

#[test]
fn n5_no_name_when_every_step_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(tmp.path(), "my-dir/my-script.py", "");
    assert_eq!(
        globals_filter_module_name(
            Some("<x>"),
            Some("my-dir/my-script.py"),
            f.to_str().unwrap()
        ),
        None
    );
    assert_eq!(
        globals_filter_module_name(None, Some("<string>"), "<string>"),
        None
    );
    assert_eq!(globals_filter_module_name(None, None, ""), None);
}

/// The name each engine hands to the filters for the same code object.
fn names(
    chain: &FilterChain,
    file: &str,
    resolver_answer: Option<&str>,
    dunder: Option<&str>,
) -> (Option<String>, Option<String>) {
    let rel = chain.relative_path(file);
    let abs = normalize_posix(file).unwrap();
    (
        legacy_filter_module_name(rel.as_deref(), resolver_answer),
        globals_filter_module_name(dunder, rel.as_deref(), &abs),
    )
}

#[test]
fn n5_src_layout_pkg_rule_flips_between_engines() {
    let c = chain(true, &[(APP, &filter(&rule("pkg:mypkg.*", "skip")))]);
    let f = "/home/ana/app/src/mypkg/core.py";
    let (legacy, globals) = names(&c, f, Some("mypkg.core"), Some("mypkg.core"));
    assert_eq!(legacy.as_deref(), Some("src.mypkg.core"));
    assert_eq!(globals.as_deref(), Some("mypkg.core"));
    let dl = c.evaluate(&c.scope_context(f, legacy.as_deref(), "run"));
    let dg = c.evaluate(&c.scope_context(f, globals.as_deref(), "run"));
    assert_eq!(dl.exec(), Exec::Trace);
    assert_eq!(dg.exec(), Exec::Skip);
}

#[test]
fn n5_script_is_main_under_globals_and_path_named_under_legacy() {
    let body = rule("pkg:tools.*", "skip") + &rule("pkg:__main__", "trace");
    let c = chain(true, &[(APP, &filter_with("skip", "allow", &body))]);
    let f = "/home/ana/app/tools/run.py";
    let (legacy, globals) = names(&c, f, Some("__main__"), Some("__main__"));
    assert_eq!(
        legacy.as_deref(),
        Some("tools.run"),
        "the resolver's __main__ does not replace a dotted name"
    );
    assert_eq!(globals.as_deref(), Some("__main__"));
    assert_eq!(
        c.evaluate(&c.scope_context(f, legacy.as_deref(), "<module>"))
            .exec(),
        Exec::Skip
    );
    assert_eq!(
        c.evaluate(&c.scope_context(f, globals.as_deref(), "<module>"))
            .exec(),
        Exec::Trace
    );
}

#[test]
fn n5_top_level_script_is_main_under_both_engines() {
    let c = chain(true, &[(APP, &filter(""))]);
    let (legacy, globals) = names(
        &c,
        "/home/ana/app/run.py",
        Some("__main__"),
        Some("__main__"),
    );
    assert_eq!(legacy.as_deref(), Some("__main__"));
    assert_eq!(globals.as_deref(), Some("__main__"));
}

#[test]
fn n5_obj_rules_flip_with_the_module_name() {
    let c = chain(
        true,
        &[(APP, &filter(&rule("obj:mypkg.core.Service.*", "skip")))],
    );
    let f = "/home/ana/app/src/mypkg/core.py";
    let (legacy, globals) = names(&c, f, Some("mypkg.core"), Some("mypkg.core"));
    assert_eq!(
        c.evaluate(&c.scope_context(f, legacy.as_deref(), "Service.run"))
            .exec(),
        Exec::Trace
    );
    assert_eq!(
        c.evaluate(&c.scope_context(f, globals.as_deref(), "Service.run"))
            .exec(),
        Exec::Skip
    );
}

#[test]
fn n5_file_selectors_do_not_depend_on_the_engine() {
    let c = chain(true, &[(APP, &filter(&rule("file:src/**", "skip")))]);
    let f = "/home/ana/app/src/mypkg/core.py";
    let (legacy, globals) = names(&c, f, Some("mypkg.core"), Some("mypkg.core"));
    assert_eq!(
        c.evaluate(&c.scope_context(f, legacy.as_deref(), "run"))
            .exec(),
        Exec::Skip
    );
    assert_eq!(
        c.evaluate(&c.scope_context(f, globals.as_deref(), "run"))
            .exec(),
        Exec::Skip
    );
}

#[test]
fn n5_path_shaped_legacy_names_are_replaced_by_dunder_name() {
    // Outside any project the legacy pipeline names files after their path (F4.2 quirk).
    let c = FilterChain::builtin_only();
    let (legacy, globals) = names(&c, "/tmp/x/app.py", Some("app"), Some("app"));
    assert_eq!(legacy.as_deref(), Some("tmp.x.app"));
    assert_eq!(globals.as_deref(), Some("app"));
}

#[test]
fn l1_helpers_behave_as_specified() {
    assert_eq!(normalize_posix("/a/./b//c/"), Some("/a/b/c".to_string()));
    assert_eq!(normalize_posix("/"), Some(String::new()));
    assert_eq!(normalize_posix("."), None);
    assert_eq!(
        relative_path_to_dotted("a/b/__init__.py").as_deref(),
        Some("a.b")
    );
    assert_eq!(
        relative_path_to_dotted("tool.pyw").as_deref(),
        Some("tool.pyw")
    );
    assert_eq!(
        relative_path_to_dotted("a/../b.py").as_deref(),
        Some("a....b")
    );
    assert!(is_valid_dotted_name("a.1b._c"));
    assert!(
        !is_valid_dotted_name("a..b") && !is_valid_dotted_name("") && !is_valid_dotted_name("é")
    );
    assert!(Path::new(APP).is_absolute());
}
