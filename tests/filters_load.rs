//! Spec F1 (sources and composition), F2 (schema) and load errors.

mod filters_common;

use ct_recorder::filters::*;
use filters_common::*;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn load(opts: LoadOptions) -> FilterChain {
    FilterChain::load(&opts).unwrap_or_else(|e| panic!("{e}"))
}

fn load_err(text: &str) -> FilterError {
    FilterChain::builder()
        .inline("bad.toml", "/p", text)
        .build()
        .expect_err("expected a load error")
}

fn names(chain: &FilterChain) -> Vec<String> {
    chain
        .sources()
        .iter()
        .map(|s| s.meta().name.clone())
        .collect()
}

fn named(name: &str, body: &str) -> String {
    filter(body).replacen("name = \"test\"", &format!("name = \"{name}\""), 1)
}

// ---- F1 -----------------------------------------------------------------------------------

#[test]
fn f1_builtin_is_first_source_with_empty_root() {
    let chain = load(LoadOptions::default());
    assert_eq!(chain.sources().len(), 1);
    let b = &chain.sources()[0];
    assert_eq!(b.name(), "<builtin>");
    assert_eq!(b.project_root(), Path::new(""));
    assert_eq!(b.origin(), SourceOrigin::Builtin);
    assert!(b.path().is_none());
}

#[test]
fn f1_no_default_filter_leaves_builtin_out() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(tmp.path(), "x.toml", &named("x", ""));
    let chain = load(LoadOptions {
        include_builtin: false,
        cli_paths: vec![f],
        ..LoadOptions::default()
    });
    assert_eq!(names(&chain), ["x"]);
}

#[test]
fn f1_empty_chain_without_builtin_traces_and_allows() {
    let chain = load(LoadOptions {
        include_builtin: false,
        ..LoadOptions::default()
    });
    assert!(chain.sources().is_empty());
    let d = chain.evaluate(&chain.scope_context("/a/b.py", Some("b"), "f"));
    assert_eq!(d.exec(), Exec::Trace);
    assert_eq!(d.value_default(), ValueAction::Allow);
    assert_eq!(d.value_default_source(), None);
    assert_eq!(chain.relative_path("/a/b.py"), None);
}

#[test]
fn f1_project_filter_found_walking_up_from_program_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let proj = tmp.path().join("proj");
    write(
        &proj,
        ".codetracer/trace-filter.toml",
        &named("project", ""),
    );
    let program_dir = proj.join("src/app/cli");
    std::fs::create_dir_all(&program_dir).unwrap();
    let chain = load(LoadOptions {
        program_dir: Some(program_dir),
        ..LoadOptions::default()
    });
    assert_eq!(names(&chain), ["builtin-default", "project"]);
    assert_eq!(chain.sources()[1].origin(), SourceOrigin::Discovered);
    assert_eq!(chain.sources()[1].project_root(), proj);
}

#[test]
fn f1_only_the_first_project_filter_found_is_loaded() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        ".codetracer/trace-filter.toml",
        &named("outer", ""),
    );
    write(
        tmp.path(),
        "inner/.codetracer/trace-filter.toml",
        &named("inner", ""),
    );
    let chain = load(LoadOptions {
        program_dir: Some(tmp.path().join("inner")),
        ..LoadOptions::default()
    });
    assert_eq!(names(&chain), ["builtin-default", "inner"]);
}

#[test]
fn f1_paths_are_made_absolute_and_clean_lexically() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(
        tmp.path(),
        "proj/.codetracer/trace-filter.toml",
        &named("project", ""),
    );
    let twisted = tmp
        .path()
        .join("proj/sub/../.codetracer/./trace-filter.toml");
    let chain = load(LoadOptions {
        cli_paths: vec![twisted.clone()],
        program_dir: Some(tmp.path().join("proj/a/../b")),
        ..LoadOptions::default()
    });
    assert_eq!(chain.sources()[1].path(), Some(f.as_path()));
    assert_eq!(chain.sources()[1].origin(), SourceOrigin::Discovered);
    assert_eq!(chain.sources()[2].path(), Some(f.as_path()));
    assert_eq!(chain.sources()[2].project_root(), tmp.path().join("proj"));
    // The error names the file as given.
    assert_eq!(chain.sources()[2].name(), twisted.display().to_string());
}

#[test]
fn f1_no_project_filter_when_none_up_the_tree() {
    let tmp = tempfile::tempdir().unwrap();
    // A file of another name and a directory named like the filter do not count.
    write(tmp.path(), ".codetracer/other.toml", &named("other", ""));
    std::fs::create_dir_all(tmp.path().join("a/.codetracer/trace-filter.toml")).unwrap();
    assert_eq!(discover_project_filter(&tmp.path().join("a")), None);
}

#[test]
fn f1_explicit_files_env_entries_before_cli_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| write(tmp.path(), &format!("{n}.toml"), &named(n, ""));
    let (e1, e2, c1, c2) = (p("env1"), p("env2"), p("cli1"), p("cli2"));
    write(
        tmp.path(),
        "prog/.codetracer/trace-filter.toml",
        &named("project", ""),
    );
    let chain = load(LoadOptions {
        program_dir: Some(tmp.path().join("prog")),
        env_value: Some(format!("{}::{}", e1.display(), e2.display())),
        cli_paths: vec![c1, c2],
        include_builtin: true,
    });
    assert_eq!(
        names(&chain),
        ["builtin-default", "project", "env1", "env2", "cli1", "cli2"]
    );
    let origins: Vec<_> = chain.sources().iter().map(|s| s.origin()).collect();
    use SourceOrigin::*;
    assert_eq!(origins, [Builtin, Discovered, Env, Env, Cli, Cli]);
}

#[test]
fn f1_one_cli_value_may_list_several_paths_separated_by_double_colon() {
    let tmp = tempfile::tempdir().unwrap();
    let a = write(tmp.path(), "a.toml", &named("a", ""));
    let b = write(tmp.path(), "b.toml", &named("b", ""));
    let chain = load(LoadOptions {
        cli_paths: vec![PathBuf::from(format!("{}::{}", a.display(), b.display()))],
        ..LoadOptions::default()
    });
    assert_eq!(names(&chain), ["builtin-default", "a", "b"]);
}

#[test]
fn f1_path_lists_skip_empty_entries() {
    assert_eq!(split_path_list("a.toml::::b.toml::"), ["a.toml", "b.toml"]);
    assert_eq!(split_path_list(""), Vec::<&str>::new());
}

#[test]
fn f1_project_root_is_parent_of_nearest_codetracer_ancestor() {
    assert_eq!(
        project_root_of(Path::new("/w/proj/.codetracer/trace-filter.toml")),
        Path::new("/w/proj")
    );
    assert_eq!(
        project_root_of(Path::new("/w/proj/.codetracer/extra/f.toml")),
        Path::new("/w/proj")
    );
    assert_eq!(
        project_root_of(Path::new("/w/.codetracer/proj/.codetracer/f.toml")),
        Path::new("/w/.codetracer/proj")
    );
}

#[test]
fn f1_project_root_without_codetracer_ancestor_is_the_files_directory() {
    assert_eq!(
        project_root_of(Path::new("/w/filters/strict.toml")),
        Path::new("/w/filters")
    );
    let tmp = tempfile::tempdir().unwrap();
    let f = write(tmp.path(), "filters/strict.toml", &named("strict", ""));
    let chain = load(LoadOptions {
        cli_paths: vec![f],
        ..LoadOptions::default()
    });
    assert_eq!(
        chain.sources()[1].project_root(),
        tmp.path().join("filters")
    );
}

#[test]
fn f1_rules_are_appended_in_chain_order_and_remember_their_source() {
    let a = filter(&(rule("pkg:a", "skip") + &rule("pkg:b", "skip")));
    let b = filter(&rule("pkg:c", "trace"));
    let chain = chain(true, &[("/p", &a), ("/q", &b)]);
    let builtin_rules = chain.sources()[0].rule_count();
    let tail: Vec<(usize, usize, &str)> = chain.rules()[builtin_rules..]
        .iter()
        .map(|r| (r.source_index(), r.index_in_source(), r.selector().text()))
        .collect();
    assert_eq!(tail, [(1, 0, "pkg:a"), (1, 1, "pkg:b"), (2, 0, "pkg:c")]);
    assert!(chain.rules()[..builtin_rules]
        .iter()
        .all(|r| r.source_index() == 0));
}

#[test]
fn f1_missing_explicit_file_is_a_read_error_naming_it() {
    let err = FilterChain::load(&LoadOptions {
        cli_paths: vec![PathBuf::from("/nonexistent/dir/f.toml")],
        ..LoadOptions::default()
    })
    .unwrap_err();
    assert_eq!(err.kind, FilterErrorKind::Read);
    assert_eq!(err.file, "/nonexistent/dir/f.toml");
    assert!(err
        .to_string()
        .starts_with("trace filter /nonexistent/dir/f.toml: cannot read"));
}

// ---- F2 -----------------------------------------------------------------------------------

#[test]
fn f2_meta_is_required() {
    let e = load_err("[scope]\ndefault_exec = \"trace\"\ndefault_value_action = \"allow\"\n");
    assert_eq!(e.kind, FilterErrorKind::Syntax);
    assert!(e.message.contains("missing field `meta`"), "{e}");
}

#[test]
fn f2_scope_is_required() {
    let e = load_err("[meta]\nname = \"x\"\nversion = 1\n");
    assert!(e.message.contains("missing field `scope`"), "{e}");
}

#[test]
fn f2_meta_name_must_be_non_empty_after_trimming() {
    let e = load_err(&filter("").replace("name = \"test\"", "name = \"   \""));
    assert_eq!(e.kind, FilterErrorKind::InvalidValue);
    assert_eq!((e.line, e.column), (Some(2), Some(8)));
    assert_eq!(e.text.as_deref(), Some("\"   \""));
}

#[test]
fn f2_meta_version_is_an_integer_of_at_least_one() {
    for (v, kind) in [
        ("0", FilterErrorKind::InvalidValue),
        ("-3", FilterErrorKind::InvalidValue),
        ("1.5", FilterErrorKind::Syntax),
        ("\"1\"", FilterErrorKind::Syntax),
    ] {
        let e = load_err(&filter("").replace("version = 1", &format!("version = {v}")));
        assert_eq!(e.kind, kind, "{v}: {e}");
        assert_eq!((e.line, e.column), (Some(3), Some(11)), "{v}: {e}");
        assert_eq!(e.text.as_deref(), Some(v));
    }
    let chain = chain(
        false,
        &[("/p", &filter("").replace("version = 1", "version = 7"))],
    );
    assert_eq!(chain.sources()[0].meta().version, 7);
}

#[test]
fn f2_meta_description_optional_and_labels_deduplicated_in_order() {
    let text = filter("").replace(
        "version = 1\n",
        "version = 1\ndescription = \"d\"\nlabels = [\"b\", \"a\", \"b\", \"c\", \"a\"]\n",
    );
    let chain = chain(false, &[("/p", &text)]);
    let meta = chain.sources()[0].meta();
    assert_eq!(meta.description.as_deref(), Some("d"));
    assert_eq!(meta.labels, ["b", "a", "c"]);
    let plain = self::chain(false, &[("/p", &filter(""))]);
    assert!(plain.sources()[0].meta().labels.is_empty());
}

#[test]
fn f2_default_exec_is_trace_skip_or_inherit() {
    let c = chain(false, &[("/p", &filter_with("skip", "allow", ""))]);
    assert_eq!(c.default_exec(), Exec::Skip);
    let e = load_err(&filter_with("maybe", "allow", ""));
    assert_eq!(e.kind, FilterErrorKind::InvalidValue);
    assert_eq!(e.text.as_deref(), Some("\"maybe\""));
    assert_eq!(e.line, Some(6));
}

#[test]
fn f2_default_value_action_accepts_deny_as_alias_for_redact() {
    for (token, action) in [
        ("allow", ValueAction::Allow),
        ("redact", ValueAction::Redact),
        ("drop", ValueAction::Drop),
        ("deny", ValueAction::Redact),
    ] {
        let c = chain(false, &[("/p", &filter_with("trace", token, ""))]);
        assert_eq!(c.default_value_action(), (action, Some(0)), "{token}");
    }
    let e = load_err(&filter_with("trace", "hide", ""));
    assert_eq!(e.kind, FilterErrorKind::InvalidValue);
    assert_eq!(e.line, Some(7));
}

#[test]
fn f2_inherit_in_the_first_source_is_an_error() {
    for (exec, value) in [("inherit", "allow"), ("trace", "inherit")] {
        let e = load_err(&filter_with(exec, value, ""));
        assert_eq!(e.kind, FilterErrorKind::InheritWithoutPrevious, "{e}");
        assert_eq!(e.text.as_deref(), Some("\"inherit\""));
        assert!(e.to_string().contains("first source"), "{e}");
    }
    // With --no-default-filter the first file is the first source.
    let tmp = tempfile::tempdir().unwrap();
    let f = write(tmp.path(), "f.toml", &filter_with("inherit", "inherit", ""));
    let e = FilterChain::load(&LoadOptions {
        include_builtin: false,
        cli_paths: vec![f.clone()],
        ..LoadOptions::default()
    })
    .unwrap_err();
    assert_eq!(e.kind, FilterErrorKind::InheritWithoutPrevious);
    // After the builtin, the same file loads and inherits the builtin's defaults.
    let c = load(LoadOptions {
        cli_paths: vec![f],
        ..LoadOptions::default()
    });
    assert_eq!(c.default_exec(), Exec::Trace);
    assert_eq!(c.default_value_action(), (ValueAction::Allow, Some(0)));
}

#[test]
fn f2_last_non_inheriting_source_sets_each_default_and_value_source_is_remembered() {
    let c = chain(
        true,
        &[
            ("/a", &filter_with("skip", "redact", "")),
            ("/b", &filter_with("inherit", "drop", "")),
            ("/c", &filter_with("trace", "inherit", "")),
            ("/d", &filter_with("inherit", "inherit", "")),
        ],
    );
    assert_eq!(c.default_exec(), Exec::Trace);
    assert_eq!(c.default_value_action(), (ValueAction::Drop, Some(2)));
    let s = c.summary();
    assert_eq!(s.default_exec, Exec::Trace);
    assert_eq!(s.default_value_action, ValueAction::Drop);
    assert_eq!(s.default_value_action_source, Some(2));
}

#[test]
fn f2_rule_exec_and_value_default_omitted_or_inherit_mean_unset() {
    let body = "[[scope.rules]]\nselector = 'pkg:a'\n\n\
                [[scope.rules]]\nselector = 'pkg:b'\nexec = \"inherit\"\nvalue_default = \"inherit\"\n\n\
                [[scope.rules]]\nselector = 'pkg:c'\nexec = \"skip\"\nvalue_default = \"deny\"\nreason = \"why\"\n";
    let c = chain(false, &[("/p", &filter(body))]);
    let r = c.rules();
    assert_eq!((r[0].exec(), r[0].value_default()), (None, None));
    assert_eq!((r[1].exec(), r[1].value_default()), (None, None));
    assert_eq!(
        (r[2].exec(), r[2].value_default(), r[2].reason()),
        (Some(Exec::Skip), Some(ValueAction::Redact), Some("why"))
    );
}

#[test]
fn f2_rule_selector_is_required_and_values_are_checked() {
    let e = load_err(&filter("[[scope.rules]]\nexec = \"skip\"\n"));
    assert!(e.message.contains("missing field `selector`"), "{e}");
    let e = load_err(&filter(
        "[[scope.rules]]\nselector = 'pkg:a'\nexec = \"always\"\n",
    ));
    assert_eq!(
        (e.kind, e.line, e.column),
        (FilterErrorKind::InvalidValue, Some(11), Some(8))
    );
    let e = load_err(&filter(
        "[[scope.rules]]\nselector = 'pkg:a'\nvalue_default = \"mask\"\n",
    ));
    assert_eq!((e.kind, e.line), (FilterErrorKind::InvalidValue, Some(11)));
}

#[test]
fn f2_value_patterns_need_selector_and_action_and_take_no_inherit() {
    let head = "[[scope.rules]]\nselector = 'pkg:a'\n\n[[scope.rules.value_patterns]]\nselector = 'local:x'\n";
    let e = load_err(&filter(head));
    assert!(e.message.contains("missing field `action`"), "{e}");
    let e = load_err(&filter(&format!("{head}action = \"inherit\"\n")));
    assert_eq!((e.kind, e.line), (FilterErrorKind::InvalidValue, Some(14)));
    let c = chain(
        false,
        &[(
            "/p",
            &filter(&format!("{head}action = \"deny\"\nreason = \"r\"\n")),
        )],
    );
    let p = c.rules()[0].value_patterns().iter().next().unwrap();
    assert_eq!((p.action(), p.reason()), (ValueAction::Redact, Some("r")));
}

#[test]
fn f2_unknown_keys_are_rejected_at_every_level() {
    let cases: &[(&str, String, usize)] = &[
        ("top", filter("") + "[extra]\nx = 1\n", 9),
        ("meta", filter("").replace("version = 1\n", "version = 1\nauthor = \"me\"\n"), 4),
        ("scope", filter("").replace("default_exec", "mode = 1\ndefault_exec"), 6),
        (
            "rule",
            filter("[[scope.rules]]\nselector = 'pkg:a'\nexecute = \"skip\"\n"),
            11,
        ),
        (
            "value pattern",
            filter("[[scope.rules]]\nselector = 'pkg:a'\n[[scope.rules.value_patterns]]\nselector = 'local:a'\naction = \"drop\"\nwhen = 1\n"),
            14,
        ),
        ("io", filter("[io]\ncapture = false\nsink = \"x\"\n"), 11),
    ];
    for (level, text, line) in cases {
        let e = load_err(text);
        assert_eq!(e.kind, FilterErrorKind::Syntax, "{level}: {e}");
        assert!(e.message.starts_with("unknown field"), "{level}: {e}");
        assert_eq!(e.line, Some(*line), "{level}: {e}");
    }
}

#[test]
fn f2_io_is_optional_and_defaults_to_no_capture() {
    let c = chain(false, &[("/p", &filter(""))]);
    assert_eq!(c.io(), &IoConfig::default());
    assert!(!c.io().capture);
}

#[test]
fn f2_io_streams_are_a_deduplicated_subset() {
    let c = chain(
        false,
        &[("/p", &filter("[io]\ncapture = true\nstreams = [\"stderr\", \"stdout\", \"stderr\", \"files\", \"stdin\"]\n"))],
    );
    assert!(c.io().capture);
    assert_eq!(
        c.io().streams,
        [
            IoStream::Stderr,
            IoStream::Stdout,
            IoStream::Files,
            IoStream::Stdin
        ]
    );
    let e = load_err(&filter("[io]\nstreams = [\"stdout\", \"network\"]\n"));
    assert_eq!(e.kind, FilterErrorKind::InvalidValue);
    assert_eq!(e.text.as_deref(), Some("\"network\""));
    assert_eq!((e.line, e.column), (Some(10), Some(22)));
}

#[test]
fn f2_io_capture_requires_streams() {
    let e = load_err(&filter("[io]\ncapture = true\n"));
    assert_eq!((e.kind, e.line), (FilterErrorKind::InvalidValue, Some(10)));
    let e = load_err(&filter("[io]\ncapture = true\nstreams = []\n"));
    assert_eq!(e.kind, FilterErrorKind::InvalidValue);
    // Streams without capture are accepted.
    chain(false, &[("/p", &filter("[io]\nstreams = [\"stdout\"]\n"))]);
}

#[test]
fn f2_io_modes_must_be_absent_or_empty() {
    chain(false, &[("/p", &filter("[io]\nmodes = []\n"))]);
    let e = load_err(&filter("[io]\nmodes = [\"tee\"]\n"));
    assert_eq!((e.kind, e.line), (FilterErrorKind::InvalidValue, Some(10)));
    assert!(e.message.contains("io.modes"));
}

#[test]
fn f2_last_source_with_an_io_section_decides_it() {
    let c = chain(
        true,
        &[
            (
                "/a",
                &filter("[io]\ncapture = true\nstreams = [\"stdout\"]\n"),
            ),
            (
                "/b",
                &filter("[io]\ncapture = true\nstreams = [\"stderr\"]\n"),
            ),
            ("/c", &filter("")),
        ],
    );
    assert_eq!(c.io().streams, [IoStream::Stderr]);
    assert_eq!(c.summary().io_source, Some(2));
}

#[test]
fn f2_a_file_using_every_feature_loads_unchanged() {
    let text = r#"# a user's filter, written for the reference recorder
[meta]
name = "payments"
version = 3
description = "Trace the payments service, keep secrets out"
labels = ["team-pay", "prod"]

[scope]
default_exec = "skip"
default_value_action = "deny"

[[scope.rules]]
selector = "pkg:payments.*"
exec = "trace"
value_default = "allow"
reason = "our code"

[[scope.rules.value_patterns]]
selector = "local:regex:^(card|cvv)_"
action = "redact"
reason = "card data"

[[scope.rules.value_patterns]]
selector = "arg:literal:raw_request"
action = "drop"

[[scope.rules]]
selector = "file:glob:tests/**"
exec = "skip"

[[scope.rules]]
selector = "obj:regex:\\.debug_"
exec = "inherit"
value_default = "inherit"

[io]
capture = true
streams = ["stdout", "stderr"]
modes = []
"#;
    let tmp = tempfile::tempdir().unwrap();
    let f = write(tmp.path(), "svc/.codetracer/trace-filter.toml", text);
    let c = load(LoadOptions {
        program_dir: Some(tmp.path().join("svc/bin")),
        ..LoadOptions::default()
    });
    assert_eq!(c.sources()[1].path(), Some(f.as_path()));
    assert_eq!(c.sources()[1].rule_count(), 3);
    assert_eq!(c.default_exec(), Exec::Skip);
    assert_eq!(c.default_value_action(), (ValueAction::Redact, Some(1)));
}

// ---- summary ------------------------------------------------------------------------------

#[test]
fn summary_lists_each_source_with_sha256_of_its_bytes_and_rule_count() {
    let tmp = tempfile::tempdir().unwrap();
    let text = filter(&(rule("pkg:a", "skip") + &rule("pkg:b", "skip")));
    let f = write(tmp.path(), "f.toml", &text);
    let c = load(LoadOptions {
        cli_paths: vec![f.clone()],
        ..LoadOptions::default()
    });
    let s = c.summary();
    assert_eq!(s.sources.len(), 2);
    assert_eq!(s.sources[0].path, "<builtin>");
    assert_eq!(
        s.sources[0].sha256,
        format!("{:x}", Sha256::digest(BUILTIN_TOML.as_bytes()))
    );
    assert_eq!(s.sources[0].project_root, "");
    assert_eq!(s.sources[1].path, f.display().to_string());
    assert_eq!(
        s.sources[1].sha256,
        format!("{:x}", Sha256::digest(text.as_bytes()))
    );
    assert_eq!(s.sources[1].rules, 2);
    assert_eq!(s.sources[0].rules, c.sources()[0].rule_count());
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["sources"][0]["path"], "<builtin>");
    assert_eq!(json["sources"][1]["origin"], "cli");
    assert_eq!(json["default_exec"], "trace");
    assert_eq!(json["default_value_action"], "allow");
}

// ---- error format -------------------------------------------------------------------------

#[test]
fn error_names_file_line_column_and_text_for_a_bad_selector() {
    let tmp = tempfile::tempdir().unwrap();
    let text = filter("[[scope.rules]]\nselector = \"pkg:app:core\"\nexec = \"skip\"\n");
    let f = write(tmp.path(), "proj/.codetracer/trace-filter.toml", &text);
    let e = FilterChain::load(&LoadOptions {
        program_dir: Some(tmp.path().join("proj")),
        ..LoadOptions::default()
    })
    .unwrap_err();
    assert_eq!(e.kind, FilterErrorKind::InvalidSelector);
    assert_eq!(e.file, f.display().to_string());
    assert_eq!((e.line, e.column), (Some(10), Some(12)));
    assert_eq!(e.text.as_deref(), Some("pkg:app:core"));
    assert_eq!(
        e.to_string(),
        format!(
            "trace filter {}:10:12: selector `pkg:app:core` has unknown match type `app` (expected glob, regex or literal; a pattern that contains `:` needs an explicit match type, e.g. `pkg:glob:app:core`)",
            f.display()
        )
    );
}

#[test]
fn error_for_an_unknown_key_points_at_the_key() {
    let e = load_err(&filter(
        "[[scope.rules]]\nselector = 'pkg:a'\n  excec = \"skip\"\n",
    ));
    assert_eq!((e.line, e.column), (Some(11), Some(3)));
    assert_eq!(e.text.as_deref(), Some("excec"));
    assert!(
        e.to_string()
            .starts_with("trace filter bad.toml:11:3: unknown field `excec`"),
        "{e}"
    );
}

#[test]
fn error_for_a_regex_that_does_not_compile_names_it() {
    let e = load_err(&filter("[[scope.rules]]\nselector = 'obj:regex:run(('\n"));
    assert_eq!(e.kind, FilterErrorKind::InvalidSelector);
    assert_eq!((e.line, e.column), (Some(10), Some(12)));
    assert!(e.message.contains("regex `run((` does not compile"), "{e}");
}

#[test]
fn error_for_a_glob_that_does_not_compile_names_it() {
    let e = load_err(
        &filter(
            "[[scope.rules]]\nselector = 'x'\n[[scope.rules]]\nselector = 'pkg:glob:app.[a-'\n",
        )
        .replace("selector = 'x'\n", "selector = 'pkg:x'\n"),
    );
    assert_eq!(e.kind, FilterErrorKind::InvalidSelector);
    assert_eq!(e.line, Some(12));
    assert!(e.message.contains("glob `app.[a-` does not compile"), "{e}");
}

#[test]
fn error_for_a_value_selector_in_a_value_pattern_of_wrong_kind() {
    let e = load_err(&filter(
        "[[scope.rules]]\nselector = 'pkg:a'\n[[scope.rules.value_patterns]]\nselector = 'file:x.py'\naction = \"drop\"\n",
    ));
    assert_eq!(
        (e.kind, e.line),
        (FilterErrorKind::InvalidSelector, Some(12))
    );
    assert!(e.message.contains("scope kind"), "{e}");
}

#[test]
fn error_for_toml_syntax_shows_the_line() {
    let e = load_err("[meta\nname = \"x\"\n");
    assert_eq!(e.kind, FilterErrorKind::Syntax);
    assert_eq!(e.line, Some(1));
    assert_eq!(e.text.as_deref(), Some("[meta"));
    assert!(!e.message.contains('\n'), "{:?}", e.message);
}

#[test]
fn error_for_a_file_that_is_not_utf8() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("f.toml");
    std::fs::write(&f, b"[meta]\nname = \"\xff\"\n").unwrap();
    let e = FilterChain::builder().file(&f).build().unwrap_err();
    assert_eq!(e.kind, FilterErrorKind::Read);
    assert!(e.to_string().contains("not UTF-8"));
}

#[test]
fn error_for_inherit_in_the_first_source_reads_well() {
    let e = FilterChain::builder()
        .inline("base.toml", "/p", filter_with("inherit", "allow", ""))
        .build()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "trace filter base.toml:6:16: `scope.default_exec = \"inherit\"` in the first source of the chain: there is no previous filter to inherit from"
    );
}
