//! Spec F4 (scope context), F5 (rule evaluation), F6 (value policy), the F7 gate and
//! `explain`.

mod filters_common;

use ct_recorder::filters::*;
use filters_common::*;

const APP: &str = "/home/ana/app";

fn project(body: &str) -> FilterChain {
    chain(true, &[(APP, &filter(body))])
}

// ---- F4.1 ---------------------------------------------------------------------------------

#[test]
fn f4_1_absolute_path_is_co_filename_normalised_lexically() {
    let c = FilterChain::builtin_only();
    let abs = |f: &str| c.scope_context(f, None, "").absolute_path;
    assert_eq!(abs("/a//b/./c.py").as_deref(), Some("/a/b/c.py"));
    assert_eq!(abs("/a/../b.py").as_deref(), Some("/a/../b.py"));
    assert_eq!(abs("pkg/./m.py").as_deref(), Some("pkg/m.py"));
    assert_eq!(abs("<string>").as_deref(), Some("<string>"));
    assert_eq!(abs("/").as_deref(), Some(""));
    assert_eq!(abs("./.").as_deref(), None);
    assert_eq!(abs("").as_deref(), None);
    assert_eq!(abs(r"C:\x\y.py").as_deref(), Some(r"C:\x\y.py"));
}

// ---- F4.2 ---------------------------------------------------------------------------------

#[test]
fn f4_2_project_root_leaving_the_fewest_components_wins() {
    let outer = filter("");
    let inner = filter("");
    let c = chain(
        true,
        &[(APP, &outer), ("/home/ana/app/services/api", &inner)],
    );
    assert_eq!(
        c.relative_path("/home/ana/app/services/api/v1/routes.py")
            .as_deref(),
        Some("v1/routes.py")
    );
    // Order of sources does not matter for the choice.
    let c = chain(
        true,
        &[("/home/ana/app/services/api", &inner), (APP, &outer)],
    );
    assert_eq!(
        c.relative_path("/home/ana/app/services/api/v1/routes.py")
            .as_deref(),
        Some("v1/routes.py")
    );
    assert_eq!(
        c.relative_path("/home/ana/app/services/web.py").as_deref(),
        Some("services/web.py")
    );
}

#[test]
fn f4_2_ties_go_to_the_earlier_source() {
    // Equal component counts only happen for the same root, so the path is the same.
    let c = chain(true, &[(APP, &filter("")), (APP, &filter(""))]);
    assert_eq!(
        c.relative_path("/home/ana/app/m.py").as_deref(),
        Some("m.py")
    );
}

#[test]
fn f4_2_root_prefix_is_component_wise_not_by_characters() {
    let c = project("");
    // Not under /home/ana/app: only the builtin's empty root matches.
    assert_eq!(
        c.relative_path("/home/ana/application/m.py").as_deref(),
        Some("home/ana/application/m.py")
    );
}

#[test]
fn f4_2_builtin_empty_root_gives_every_file_a_relative_path() {
    let c = FilterChain::builtin_only();
    assert_eq!(
        c.relative_path("/usr/lib/python3.11/json/decoder.py")
            .as_deref(),
        Some("usr/lib/python3.11/json/decoder.py")
    );
    assert_eq!(
        c.relative_path("/tmp/x/app.py").as_deref(),
        Some("tmp/x/app.py")
    );
    assert_eq!(c.relative_path("pkg/m.py").as_deref(), Some("pkg/m.py"));
    assert_eq!(c.relative_path("<string>").as_deref(), Some("<string>"));
    assert_eq!(
        c.relative_path("<frozen importlib._bootstrap>").as_deref(),
        Some("<frozen importlib._bootstrap>")
    );
    assert_eq!(c.relative_path("/").as_deref(), None);
    assert_eq!(c.relative_path("").as_deref(), None);
}

#[test]
fn f4_2_without_builtin_files_outside_every_project_have_no_relative_path() {
    let c = chain(false, &[(APP, &filter(""))]);
    assert_eq!(c.relative_path("/tmp/x/app.py"), None);
    assert_eq!(c.relative_path("<string>"), None);
    assert_eq!(
        c.relative_path("/home/ana/app/m.py").as_deref(),
        Some("m.py")
    );
}

#[test]
fn f4_2_dot_dropped_and_dotdot_removes_one_earlier_segment() {
    let c = project("");
    assert_eq!(
        c.relative_path("/home/ana/app/./src/../lib/m.py")
            .as_deref(),
        Some("lib/m.py")
    );
    // `..` with nothing before it removes nothing.
    assert_eq!(
        c.relative_path("/home/ana/app/../other/m.py").as_deref(),
        Some("other/m.py")
    );
}

#[test]
fn f4_2_file_equal_to_a_root_has_no_relative_path() {
    let c = chain(false, &[(APP, &filter(""))]);
    assert_eq!(c.relative_path("/home/ana/app"), None);
    assert_eq!(c.relative_path("/home/ana/app/"), None);
}

// ---- F4.3 (legacy pipeline name) ----------------------------------------------------------

#[test]
fn f4_3_relative_path_converted_with_l1_2_without_validation() {
    assert_eq!(
        legacy_filter_module_name(Some("src/mypkg/core.py"), None).as_deref(),
        Some("src.mypkg.core")
    );
    assert_eq!(
        legacy_filter_module_name(Some("pkg/__init__.py"), None).as_deref(),
        Some("pkg")
    );
    assert_eq!(
        legacy_filter_module_name(Some("my-scripts/run.py"), None).as_deref(),
        Some("my-scripts.run")
    );
    assert_eq!(
        legacy_filter_module_name(Some("a/mod.pyc"), None).as_deref(),
        Some("a.mod.pyc")
    );
    assert_eq!(legacy_filter_module_name(Some("__init__.py"), None), None);
    assert_eq!(legacy_filter_module_name(None, None), None);
}

#[test]
fn f4_3_resolver_answer_replaces_a_missing_first_name() {
    assert_eq!(
        legacy_filter_module_name(None, Some("pkg.mod")).as_deref(),
        Some("pkg.mod")
    );
    assert_eq!(
        legacy_filter_module_name(Some("__init__.py"), Some("pkg")).as_deref(),
        Some("pkg")
    );
}

#[test]
fn f4_3_resolver_answer_replaces_an_invalid_first_name() {
    assert_eq!(
        legacy_filter_module_name(Some("my-scripts/run.py"), Some("run")).as_deref(),
        Some("run")
    );
    assert_eq!(
        legacy_filter_module_name(Some(".venv/lib/x.py"), Some("x")).as_deref(),
        Some("x")
    );
    assert_eq!(
        legacy_filter_module_name(Some("<string>"), Some("__main__")).as_deref(),
        Some("__main__")
    );
    // No answer: the invalid name stays.
    assert_eq!(
        legacy_filter_module_name(Some("my-scripts/run.py"), None).as_deref(),
        Some("my-scripts.run")
    );
}

#[test]
fn f4_3_main_replaces_a_first_name_without_a_dot_only() {
    assert_eq!(
        legacy_filter_module_name(Some("tool.py"), Some("__main__")).as_deref(),
        Some("__main__")
    );
    assert_eq!(
        legacy_filter_module_name(Some("tools/run.py"), Some("__main__")).as_deref(),
        Some("tools.run")
    );
}

#[test]
fn f4_3_valid_first_name_beats_the_resolver_answer() {
    // src layout under a project filter: the filters see `src.mypkg.core`.
    assert_eq!(
        legacy_filter_module_name(Some("src/mypkg/core.py"), Some("mypkg.core")).as_deref(),
        Some("src.mypkg.core")
    );
    // A project-less file whose absolute path is a valid dotted name keeps the path shape,
    // even for `python tool.py`.
    let c = FilterChain::builtin_only();
    let rel = c.relative_path("/home/ana/app/tool.py");
    assert_eq!(
        legacy_filter_module_name(rel.as_deref(), Some("__main__")).as_deref(),
        Some("home.ana.app.tool")
    );
}

// ---- F4.4 ---------------------------------------------------------------------------------

#[test]
fn f4_4_object_name_is_module_dot_qualname() {
    let c = FilterChain::builtin_only();
    assert_eq!(
        ctx(&c, "/a.py", Some("app.core"), "Service.run")
            .object_name
            .as_deref(),
        Some("app.core.Service.run")
    );
    assert_eq!(
        ctx(&c, "/a.py", Some("app.core"), "")
            .object_name
            .as_deref(),
        Some("app.core")
    );
    assert_eq!(
        ctx(&c, "/a.py", None, "Service.run").object_name.as_deref(),
        Some("Service.run")
    );
    assert_eq!(ctx(&c, "/a.py", None, "").object_name, None);
    assert_eq!(ctx(&c, "/a.py", Some(""), "f").module_name, None);
}

// ---- F5 -----------------------------------------------------------------------------------

#[test]
fn f5_pkg_rule_tests_the_module_name() {
    let c = project(&rule("pkg:app.*", "skip"));
    assert_eq!(
        c.evaluate(&ctx(&c, "/x/y.py", Some("app.core"), "f"))
            .exec(),
        Exec::Skip
    );
    assert_eq!(
        c.evaluate(&ctx(&c, "/x/y.py", Some("lib.core"), "f"))
            .exec(),
        Exec::Trace
    );
}

#[test]
fn f5_file_rule_tests_the_relative_path() {
    let c = project(&rule("file:tests/**", "skip"));
    assert_eq!(
        c.evaluate(&ctx(&c, "/home/ana/app/tests/unit/t.py", None, ""))
            .exec(),
        Exec::Skip
    );
    assert_eq!(
        c.evaluate(&ctx(&c, "/home/ana/app/src/t.py", None, ""))
            .exec(),
        Exec::Trace
    );
}

#[test]
fn f5_file_rule_has_no_second_try_on_the_absolute_path() {
    // The absolute path ends in x.py; the relative path (`m/x.py`) does not start with `/`.
    let c = project(&rule("file:regex:^/home/", "skip"));
    let cx = ctx(&c, "/home/ana/app/m/x.py", None, "");
    assert_eq!(cx.relative_path.as_deref(), Some("m/x.py"));
    assert_eq!(c.evaluate(&cx).exec(), Exec::Trace);
}

#[test]
fn f5_file_rule_tests_the_absolute_path_when_there_is_no_relative_path() {
    let c = chain(
        false,
        &[(APP, &filter(&rule(r"file:regex:^/opt/.*\.py$", "skip")))],
    );
    let cx = ctx(&c, "/opt/tool/x.py", None, "");
    assert_eq!(cx.relative_path, None);
    assert_eq!(c.evaluate(&cx).exec(), Exec::Skip);
}

#[test]
fn f5_obj_rule_tests_the_object_name() {
    let c = project(&rule("obj:app.core.Service.*", "skip"));
    assert_eq!(
        c.evaluate(&ctx(&c, "/x.py", Some("app.core"), "Service.run"))
            .exec(),
        Exec::Skip
    );
    assert_eq!(
        c.evaluate(&ctx(&c, "/x.py", Some("app.core"), "helper"))
            .exec(),
        Exec::Trace
    );
    // Without a module name the object name is the qualname alone.
    let c = project(&rule("obj:literal:Service.run", "skip"));
    assert_eq!(
        c.evaluate(&ctx(&c, "/x.py", None, "Service.run")).exec(),
        Exec::Skip
    );
}

#[test]
fn f5_rule_whose_subject_is_missing_does_not_match() {
    let c = chain(
        false,
        &[(
            APP,
            &filter(
                &(rule("pkg:*", "skip") + &rule("obj:*", "skip") + &rule("file:regex:.*", "skip")),
            ),
        )],
    );
    let cx = ctx(&c, "", None, "");
    assert_eq!(
        (&cx.module_name, &cx.object_name, cx.file_subject()),
        (&None, &None, None)
    );
    let d = c.evaluate(&cx);
    assert_eq!(d.exec(), Exec::Trace);
    assert!(d.matched_rule().is_none());
}

#[test]
fn f5_last_matching_rule_wins() {
    let c = project(
        &(rule("pkg:app.*", "skip")
            + &rule("pkg:app.core", "trace")
            + &rule("pkg:app.core", "skip")),
    );
    let d = c.evaluate(&ctx(&c, "/x.py", Some("app.core"), "f"));
    assert_eq!(d.exec(), Exec::Skip);
    let m = d.matched_rule().unwrap();
    assert_eq!((m.source_index, m.index_in_source), (1, 2));
}

#[test]
fn f5_no_object_over_file_over_package_precedence() {
    // US0028's precedence is not implemented: a later pkg rule beats an earlier obj rule.
    let c = project(
        &(rule("obj:app.core.run", "trace")
            + &rule("file:**", "trace")
            + &rule("pkg:app.core", "skip")),
    );
    let d = c.evaluate(&ctx(
        &c,
        "/home/ana/app/app/core.py",
        Some("app.core"),
        "run",
    ));
    assert_eq!(d.exec(), Exec::Skip);
    assert_eq!(&*d.matched_rule().unwrap().selector, "pkg:app.core");
}

#[test]
fn f5_rule_without_exec_keeps_the_current_decision() {
    let body = rule("pkg:app.*", "skip")
        + "[[scope.rules]]\nselector = 'pkg:app.core'\nvalue_default = \"redact\"\n";
    let c = project(&body);
    let d = c.evaluate(&ctx(&c, "/x.py", Some("app.core"), "f"));
    assert_eq!(d.exec(), Exec::Skip);
    assert_eq!(d.value_default(), ValueAction::Redact);
    assert_eq!(d.matched_rule().unwrap().index_in_source, 1);
}

#[test]
fn f5_defaults_apply_when_no_rule_matches() {
    let c = chain(
        true,
        &[(
            APP,
            &filter_with("skip", "redact", &rule("pkg:app", "trace")),
        )],
    );
    let d = c.evaluate(&ctx(&c, "/x.py", Some("other"), "f"));
    // The builtin catch-all matched, so patterns come from it, but exec and default are the chain's.
    assert_eq!(d.exec(), Exec::Skip);
    assert_eq!(d.value_default(), ValueAction::Redact);
    assert_eq!(d.value_default_source(), Some(1));
}

#[test]
fn f5_value_default_replaced_and_its_source_recorded() {
    let a = filter("[[scope.rules]]\nselector = 'pkg:app.*'\nvalue_default = \"drop\"\n");
    let b = filter("[[scope.rules]]\nselector = 'pkg:app.core'\nvalue_default = \"allow\"\n");
    let c = chain(true, &[("/a", &a), ("/b", &b)]);
    let d = c.evaluate(&ctx(&c, "/x.py", Some("app.core"), "f"));
    assert_eq!(
        (d.value_default(), d.value_default_source()),
        (ValueAction::Allow, Some(2))
    );
    let d = c.evaluate(&ctx(&c, "/x.py", Some("app.web"), "f"));
    assert_eq!(
        (d.value_default(), d.value_default_source()),
        (ValueAction::Drop, Some(1))
    );
}

#[test]
fn f5_value_patterns_replaced_even_by_a_rule_without_patterns() {
    let body = "[[scope.rules]]\nselector = 'pkg:app.*'\n[[scope.rules.value_patterns]]\nselector = 'local:x'\naction = \"drop\"\n\n\
                [[scope.rules]]\nselector = 'pkg:app.core'\nexec = \"trace\"\n";
    let c = project(body);
    let d = c.evaluate(&ctx(&c, "/x.py", Some("app.core"), "f"));
    assert!(d.value_patterns().is_empty());
    assert_eq!(d.value_action(ValueKind::Local, "x"), ValueAction::Allow);
    // The builtin's redaction patterns were replaced as well.
    assert_eq!(
        d.value_action(ValueKind::Local, "password"),
        ValueAction::Allow
    );
    let d = c.evaluate(&ctx(&c, "/x.py", Some("app.web"), "f"));
    assert_eq!(d.value_action(ValueKind::Local, "x"), ValueAction::Drop);
}

#[test]
fn f5_matched_rule_is_reported_with_source_index_selector_and_reason() {
    let body = "[[scope.rules]]\nselector = 'pkg:app.*'\nexec = \"skip\"\nreason = \"not ours\"\n";
    let c = project(body);
    let d = c.evaluate(&ctx(&c, "/x.py", Some("app.core"), "f"));
    let m = d.matched_rule().unwrap();
    assert_eq!(m.source_index, 1);
    assert_eq!(m.index_in_source, 0);
    assert_eq!(m.rule_index, c.sources()[0].rule_count());
    assert_eq!(&*m.selector, "pkg:app.*");
    assert_eq!(m.reason.as_deref(), Some("not ours"));
}

#[test]
fn f5_rules_of_all_sources_run_in_chain_order() {
    let a = filter(&rule("pkg:app.*", "skip"));
    let b = filter(&rule("pkg:app.*", "trace"));
    let c = chain(true, &[("/a", &a), ("/b", &b)]);
    assert_eq!(
        c.evaluate(&ctx(&c, "/x.py", Some("app.core"), "f")).exec(),
        Exec::Trace
    );
    let c = chain(true, &[("/b", &b), ("/a", &a)]);
    assert_eq!(
        c.evaluate(&ctx(&c, "/x.py", Some("app.core"), "f")).exec(),
        Exec::Skip
    );
}

// ---- F6 -----------------------------------------------------------------------------------

fn patterns_rule(selector: &str, value_default: Option<&str>, patterns: &[(&str, &str)]) -> String {
    let mut s = format!("[[scope.rules]]\nselector = '{selector}'\n");
    if let Some(v) = value_default {
        s += &format!("value_default = \"{v}\"\n");
    }
    for (sel, action) in patterns {
        s +=
            &format!("[[scope.rules.value_patterns]]\nselector = '{sel}'\naction = \"{action}\"\n");
    }
    s + "\n"
}

#[test]
fn f6_first_matching_pattern_of_the_same_kind_decides() {
    let c = project(&patterns_rule(
        "pkg:*",
        None,
        &[
            ("local:tmp_*", "drop"),
            ("local:tmp_keep", "allow"),
            ("local:*", "redact"),
        ],
    ));
    let d = c.evaluate(&ctx(&c, "/x.py", Some("app"), "f"));
    assert_eq!(
        d.value_action(ValueKind::Local, "tmp_keep"),
        ValueAction::Drop
    );
    assert_eq!(
        d.value_action(ValueKind::Local, "other"),
        ValueAction::Redact
    );
    assert_eq!(
        d.value_pattern_for(ValueKind::Local, "tmp_x")
            .unwrap()
            .selector()
            .text(),
        "local:tmp_*"
    );
}

#[test]
fn f6_patterns_of_other_kinds_do_not_apply() {
    let c = project(&patterns_rule(
        "pkg:*",
        Some("allow"),
        &[
            ("arg:secret", "redact"),
            ("ret:secret", "drop"),
            ("attr:secret", "redact"),
            ("global:secret", "drop"),
        ],
    ));
    let d = c.evaluate(&ctx(&c, "/x.py", Some("app"), "f"));
    assert_eq!(
        d.value_action(ValueKind::Local, "secret"),
        ValueAction::Allow
    );
    assert_eq!(
        d.value_action(ValueKind::Arg, "secret"),
        ValueAction::Redact
    );
    assert_eq!(
        d.value_action(ValueKind::Return, "secret"),
        ValueAction::Drop
    );
    assert_eq!(
        d.value_action(ValueKind::Attr, "secret"),
        ValueAction::Redact
    );
    assert_eq!(
        d.value_action(ValueKind::Global, "secret"),
        ValueAction::Drop
    );
}

#[test]
fn f6_value_default_applies_when_no_pattern_matches() {
    let c = project(&patterns_rule(
        "pkg:*",
        Some("redact"),
        &[("local:ok", "allow")],
    ));
    let d = c.evaluate(&ctx(&c, "/x.py", Some("app"), "f"));
    assert_eq!(d.value_action(ValueKind::Local, "ok"), ValueAction::Allow);
    assert_eq!(
        d.value_action(ValueKind::Local, "other"),
        ValueAction::Redact
    );
    assert_eq!(d.value_action(ValueKind::Arg, "ok"), ValueAction::Redact);
}

#[test]
fn f6_drop_discards_earlier_sources_patterns() {
    // Source 1 provides patterns; source 2 sets the drop default without matching any rule.
    let a = filter(&patterns_rule("pkg:*", None, &[("local:keep", "allow")]));
    let b = filter_with("inherit", "drop", "");
    let c = chain(true, &[("/a", &a), ("/b", &b)]);
    let d = c.evaluate(&ctx(&c, "/x.py", Some("app"), "f"));
    assert_eq!(
        (d.value_default(), d.value_default_source()),
        (ValueAction::Drop, Some(2))
    );
    assert!(d.value_patterns_discarded());
    assert!(d.value_patterns().is_empty());
    assert_eq!(d.value_action(ValueKind::Local, "keep"), ValueAction::Drop);
    // A drop set by a matching rule comes with that rule's own (here: empty) pattern list,
    // so only a chain default from a later source can discard earlier patterns.
    let b = filter_with(
        "inherit",
        "inherit",
        &patterns_rule("pkg:*", Some("drop"), &[]),
    );
    let c = chain(true, &[("/a", &a), ("/b", &b)]);
    let d = c.evaluate(&ctx(&c, "/x.py", Some("app"), "f"));
    assert!(!d.value_patterns_discarded());
    assert_eq!(d.value_action(ValueKind::Local, "keep"), ValueAction::Drop);
}

#[test]
fn f6_drop_keeps_patterns_of_its_own_or_later_sources() {
    // The drop default and the patterns come from the same source.
    let a = filter(&patterns_rule(
        "pkg:*",
        Some("drop"),
        &[("local:keep", "allow")],
    ));
    let c = chain(true, &[("/a", &a)]);
    let d = c.evaluate(&ctx(&c, "/x.py", Some("app"), "f"));
    assert!(!d.value_patterns_discarded());
    assert_eq!(d.value_action(ValueKind::Local, "keep"), ValueAction::Allow);
    assert_eq!(d.value_action(ValueKind::Local, "x"), ValueAction::Drop);
    // Drop set early (source 1 default), patterns from a later source: kept.
    let a = filter_with("trace", "drop", "");
    let b = filter_with(
        "inherit",
        "inherit",
        &patterns_rule("pkg:*", None, &[("local:keep", "allow")]),
    );
    let c = chain(true, &[("/a", &a), ("/b", &b)]);
    let d = c.evaluate(&ctx(&c, "/x.py", Some("app"), "f"));
    assert_eq!(d.value_action(ValueKind::Local, "keep"), ValueAction::Allow);
    assert_eq!(d.value_action(ValueKind::Local, "x"), ValueAction::Drop);
}

#[test]
fn f6_builtin_patterns_discarded_by_a_project_drop_default() {
    let c = chain(true, &[(APP, &filter_with("trace", "drop", ""))]);
    let d = c.evaluate(&ctx(&c, "/x.py", Some("app"), "f"));
    assert!(d.value_patterns_discarded());
    assert_eq!(
        d.value_action(ValueKind::Local, "password"),
        ValueAction::Drop
    );
    // A redact default does not discard: the builtin still redacts secrets.
    let c = chain(true, &[(APP, &filter_with("trace", "allow", ""))]);
    let d = c.evaluate(&ctx(&c, "/x.py", Some("app"), "f"));
    assert_eq!(
        d.value_action(ValueKind::Local, "password"),
        ValueAction::Redact
    );
}

#[test]
fn f6_deny_is_redact() {
    let c = project(&patterns_rule("pkg:*", Some("deny"), &[("arg:x", "deny")]));
    let d = c.evaluate(&ctx(&c, "/x.py", Some("app"), "f"));
    assert_eq!(d.value_default(), ValueAction::Redact);
    assert_eq!(d.value_action(ValueKind::Arg, "x"), ValueAction::Redact);
}

// ---- F7 gate ------------------------------------------------------------------------------

#[test]
fn f7_skip_disables_the_code_object() {
    let c = project(&rule("pkg:app", "skip"));
    let d = c.evaluate(&ctx(&c, "/x.py", Some("app"), ""));
    assert!(!d.is_traced());
    assert!(!d.refused_as_synthetic());
}

#[test]
fn f7_trace_is_refused_for_synthetic_filenames() {
    let c = project(&rule("pkg:*", "trace"));
    for f in [
        "<string>",
        "<frozen importlib._bootstrap>",
        "  <stdin>  ",
        "<>",
    ] {
        let d = c.evaluate(&ctx(&c, f, Some("app"), "f"));
        assert_eq!(d.rules_exec(), Exec::Trace, "{f}");
        assert_eq!(d.exec(), Exec::Skip, "{f}");
        assert!(d.refused_as_synthetic(), "{f}");
    }
    for f in ["<string", "string>", "/x/<string>.py"] {
        let d = c.evaluate(&ctx(&c, f, Some("app"), "f"));
        assert_eq!(d.exec(), Exec::Trace, "{f}");
    }
}

#[test]
fn f7_synthetic_gate_leaves_skip_alone() {
    let c = project(&rule("pkg:*", "skip"));
    let d = c.evaluate(&ctx(&c, "<string>", Some("app"), "f"));
    assert_eq!(d.exec(), Exec::Skip);
    assert!(!d.refused_as_synthetic());
}

// ---- explain ------------------------------------------------------------------------------

#[test]
fn explain_lists_every_matching_rule_in_order_with_its_effect() {
    let body = rule("pkg:app.*", "skip")
        + "[[scope.rules]]\nselector = 'obj:app.core.*'\nexec = \"trace\"\nvalue_default = \"redact\"\nreason = \"core is ours\"\n\n"
        + &rule("pkg:nomatch", "skip");
    let c = project(&body);
    let cx = ctx(&c, "/home/ana/app/app/core.py", Some("app.core"), "run");
    let e = c.explain(&cx);
    let sel: Vec<&str> = e.steps.iter().map(|s| s.selector.as_str()).collect();
    assert_eq!(sel, ["pkg:glob:*", "pkg:app.*", "obj:app.core.*"]);
    assert_eq!(e.steps[1].exec, Some(Exec::Skip));
    assert_eq!(e.steps[2].value_default, Some(ValueAction::Redact));
    assert_eq!(e.steps[2].subject, "app.core.run");
    assert_eq!(e.steps[0].value_patterns, 5);
    let d = c.evaluate(&cx);
    assert_eq!(e.decision.exec(), d.exec());
    assert_eq!(e.decision.matched_rule(), d.matched_rule());
    let text = e.to_string();
    assert!(text.contains("module name:   app.core"), "{text}");
    assert!(text.contains("inline0.toml rule 2/3 `obj:app.core.*` on object name `app.core.run`: exec trace; value default redact; value patterns replaced by 0 (core is ours)"), "{text}");
    assert!(
        text.contains(
            "decision: trace; value default redact (from inline0.toml); 0 value pattern(s)"
        ),
        "{text}"
    );
}

#[test]
fn explain_says_when_nothing_matched_and_when_the_gate_refused() {
    let c = chain(false, &[(APP, &filter(""))]);
    let e = c.explain(&ctx(&c, "<string>", None, "<module>"));
    let text = e.to_string();
    assert!(text.contains("no rule matched"), "{text}");
    assert!(
        text.contains("decision: skip (the rules said trace; refused: synthetic filename)"),
        "{text}"
    );
}

#[test]
fn chain_and_decision_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<FilterChain>();
    assert_send_sync::<Decision>();
    assert_send_sync::<ScopeContext>();
    let c = std::sync::Arc::new(FilterChain::builtin_only());
    let d = std::thread::spawn({
        let c = c.clone();
        move || c.evaluate(&c.scope_context("/x/m.py", Some("m"), "f"))
    })
    .join()
    .unwrap();
    assert_eq!(d.value_action(ValueKind::Arg, "token"), ValueAction::Redact);
}
