//! Spec F3: selector syntax, kinds, match types and the load-time rewrite of `file` patterns.

mod filters_common;

use ct_recorder::filters::*;
use filters_common::*;

const ROOT: &str = "/home/ana/app";

fn scope_selector(sel: &str) -> Result<Selector, FilterError> {
    let text = filter(&format!("[[scope.rules]]\nselector = '{sel}'\n"));
    FilterChain::builder()
        .inline("f.toml", ROOT, text)
        .build()
        .map(|c| c.rules()[0].selector().clone())
}

fn value_selector(sel: &str) -> Result<Selector, FilterError> {
    let text = filter(&format!(
        "[[scope.rules]]\nselector = 'pkg:x'\n[[scope.rules.value_patterns]]\nselector = '{sel}'\naction = \"redact\"\n"
    ));
    FilterChain::builder()
        .inline("f.toml", ROOT, text)
        .build()
        .map(|c| {
            c.rules()[0]
                .value_patterns()
                .iter()
                .next()
                .unwrap()
                .selector()
                .clone()
        })
}

fn ok(sel: &str) -> Selector {
    scope_selector(sel).unwrap_or_else(|e| panic!("{e}"))
}

fn err(sel: &str) -> FilterError {
    let e = scope_selector(sel).expect_err(sel);
    assert_eq!(e.kind, FilterErrorKind::InvalidSelector, "{e}");
    assert_eq!(e.text.as_deref(), Some(sel));
    e
}

fn pattern(sel: &str) -> String {
    ok(sel).pattern().to_string()
}

// ---- syntax -------------------------------------------------------------------------------

#[test]
fn f3_kind_colon_pattern_defaults_to_glob() {
    let s = ok("pkg:app.*");
    assert_eq!(s.kind(), SelectorKind::Scope(ScopeKind::Pkg));
    assert_eq!(s.match_type(), MatchType::Glob);
    assert_eq!(s.pattern(), "app.*");
    assert_eq!(s.text(), "pkg:app.*");
}

#[test]
fn f3_three_part_selector_third_part_may_contain_colons() {
    let s = ok("obj:regex:^app::[A-Z]+:x$");
    assert_eq!(s.match_type(), MatchType::Regex);
    assert_eq!(s.pattern(), "^app::[A-Z]+:x$");
    assert!(s.matches("app::ABC:x"));
    let s = ok("obj:literal:a:b:c");
    assert_eq!(s.pattern(), "a:b:c");
}

#[test]
fn f3_two_part_selector_with_colon_misread_as_match_type() {
    let e = err("pkg:app:core");
    assert!(e.message.contains("unknown match type `app`"), "{e}");
    // A pattern that starts with a valid match type is silently taken as one.
    let s = ok("obj:regex:x");
    assert_eq!((s.match_type(), s.pattern()), (MatchType::Regex, "x"));
    let s = ok("obj:glob:run");
    assert_eq!((s.match_type(), s.pattern()), (MatchType::Glob, "run"));
    // The fix: spell the match type.
    assert_eq!(ok("pkg:glob:app:core").pattern(), "app:core");
}

#[test]
fn f3_empty_selector_is_a_load_error() {
    let e = err("");
    assert!(e.message.contains("empty"), "{e}");
}

#[test]
fn f3_selector_without_pattern_is_a_load_error() {
    err("pkg");
    assert!(err("pkg:").message.contains("empty pattern"));
    assert!(err("pkg:glob:").message.contains("empty pattern"));
    assert!(err("pkg:regex:").message.contains("empty pattern"));
}

#[test]
fn f3_unknown_kind_is_a_load_error() {
    assert!(err("module:app").message.contains("unknown kind `module`"));
    assert!(err("PKG:app").message.contains("unknown kind `PKG`"));
    assert!(err(":app").message.contains("unknown kind ``"));
}

#[test]
fn f3_unknown_or_empty_match_type_is_a_load_error() {
    assert!(err("pkg:fnmatch:app")
        .message
        .contains("unknown match type `fnmatch`"));
    assert!(err("pkg::app").message.contains("empty match type"));
    assert!(err("pkg:Glob:app")
        .message
        .contains("unknown match type `Glob`"));
}

#[test]
fn f3_value_kind_in_a_scope_rule_is_a_load_error() {
    for k in ["local", "global", "arg", "ret", "attr"] {
        let e = err(&format!("{k}:x"));
        assert!(e.message.contains("value kind"), "{e}");
    }
}

#[test]
fn f3_scope_kind_in_a_value_pattern_is_a_load_error() {
    for k in ["pkg", "file", "obj"] {
        let e = value_selector(&format!("{k}:x")).unwrap_err();
        assert_eq!(e.kind, FilterErrorKind::InvalidSelector);
        assert!(e.message.contains("scope kind"), "{e}");
    }
}

#[test]
fn f3_all_value_kinds_are_accepted_in_value_patterns() {
    for (k, kind) in [
        ("local", ValueKind::Local),
        ("global", ValueKind::Global),
        ("arg", ValueKind::Arg),
        ("ret", ValueKind::Return),
        ("attr", ValueKind::Attr),
    ] {
        let s = value_selector(&format!("{k}:x")).unwrap();
        assert_eq!(s.kind(), SelectorKind::Value(kind));
    }
}

#[test]
fn f3_regex_or_glob_that_does_not_compile_is_a_load_error() {
    assert!(err("pkg:regex:(unclosed")
        .message
        .contains("does not compile"));
    assert!(err("pkg:glob:[z-a]").message.contains("does not compile"));
    assert!(err("pkg:{a,b").message.contains("does not compile"));
}

// ---- match types --------------------------------------------------------------------------

#[test]
fn f3_glob_matches_the_whole_string_case_sensitively() {
    let s = ok("pkg:app");
    assert!(s.matches("app"));
    assert!(!s.matches("app.core"));
    assert!(!s.matches("my.app"));
    assert!(!s.matches("App"));
}

#[test]
fn f3_glob_star_and_question_do_not_cross_slash() {
    let s = ok("obj:a*z");
    assert!(s.matches("a.b.c.z"));
    assert!(!s.matches("a/z"));
    let s = ok("obj:a?c");
    assert!(s.matches("abc"));
    assert!(!s.matches("a/c"));
}

#[test]
fn f3_glob_supports_double_star_classes_and_alternatives() {
    let s = ok("file:src/**/test_*.py");
    assert!(s.matches("src/test_a.py"));
    assert!(s.matches("src/x/y/test_a.py"));
    assert!(!s.matches("lib/test_a.py"));
    let s = ok("pkg:app.[cd]ore");
    assert!(s.matches("app.core") && s.matches("app.dore") && !s.matches("app.more"));
    let s = ok("pkg:{api,web}.*");
    assert!(s.matches("api.v1") && s.matches("web.x") && !s.matches("cli.x"));
}

#[test]
fn f3_pkg_app_star_matches_any_depth_below_app_but_not_app_itself() {
    let s = ok("pkg:app.*");
    assert!(s.matches("app.core"));
    assert!(s.matches("app.core.models.user"));
    assert!(!s.matches("app"));
    assert!(!s.matches("application"));
}

#[test]
fn f3_regex_is_an_unanchored_search() {
    let s = ok("pkg:regex:core");
    assert!(s.matches("app.core.models"));
    assert!(s.matches("core"));
    let s = ok("pkg:regex:^app$");
    assert!(s.matches("app") && !s.matches("app.core"));
}

#[test]
fn f3_literal_is_exact_equality() {
    let s = ok("pkg:literal:app.*");
    assert!(s.matches("app.*"));
    assert!(!s.matches("app.core"));
    assert!(!s.matches("APP.*"));
}

// ---- file pattern rewrite -----------------------------------------------------------------

#[test]
fn f3_file_glob_backslashes_become_slashes() {
    assert_eq!(pattern(r"file:src\app\*.py"), "src/app/*.py");
}

#[test]
fn f3_file_glob_leading_dot_slash_then_leading_slashes_removed() {
    assert_eq!(pattern("file:././src/*.py"), "src/*.py");
    assert_eq!(pattern("file:///src/*.py"), "src/*.py");
    assert_eq!(pattern("file:.//src/*.py"), "src/*.py");
    // Only leading `./` sequences: a later `./` stays (and the glob keeps it).
    assert_eq!(pattern("file:src/./a.py"), "src/./a.py");
}

#[test]
fn f3_file_glob_project_root_prefix_removed() {
    assert_eq!(pattern("file:/home/ana/app/src/*.py"), "src/*.py");
    assert_eq!(pattern("file:home/ana/app/src/*.py"), "src/*.py");
    // Not followed by `/`: kept.
    assert_eq!(
        pattern("file:/home/ana/application/*.py"),
        "home/ana/application/*.py"
    );
    // Another root: kept, without the leading `/`.
    assert_eq!(pattern("file:/opt/other/*.py"), "opt/other/*.py");
}

#[test]
fn f3_file_literal_absolute_pattern_made_relative_to_the_project_root() {
    assert_eq!(
        pattern("file:literal:/home/ana/app/src/main.py"),
        "src/main.py"
    );
    assert_eq!(pattern("file:regex:/home/ana/app/src/.*"), "src/.*");
}

#[test]
fn f3_file_literal_absolute_pattern_outside_the_project_root_is_an_error() {
    let e = err("file:literal:/home/ana/application/main.py");
    assert!(e.message.contains("project root"), "{e}");
    err("file:regex:/etc/.*");
}

#[test]
fn f3_file_literal_dot_segments_dropped_and_dotdot_removes_one_segment() {
    assert_eq!(pattern("file:literal:./src/./a.py"), "src/a.py");
    assert_eq!(pattern("file:literal:src/sub/../a.py"), "src/a.py");
    assert_eq!(pattern("file:literal:src//a.py"), "src/a.py");
}

#[test]
fn f3_file_literal_climbing_above_the_start_is_an_error() {
    let e = err("file:literal:../a.py");
    assert!(e.message.contains(".."), "{e}");
    err("file:literal:src/../../a.py");
    err("file:regex:../x");
}

#[test]
fn f3_file_regex_is_rewritten_as_a_path_too() {
    // Doubled and trailing slashes vanish with the path treatment.
    assert_eq!(pattern(r"file:regex:src//.*\.py/"), r"src/.*\.py");
    // Backslashes are not separators for literal/regex patterns.
    assert_eq!(pattern(r"file:regex:src\\a"), r"src\\a");
}

#[test]
fn f3_file_pattern_empty_after_rewrite_is_an_error() {
    err("file:./");
    err("file:literal:/home/ana/app");
}

#[test]
fn f3_builtin_root_is_empty_so_absolute_literals_just_lose_their_slash() {
    let text = filter("[[scope.rules]]\nselector = 'file:literal:/usr/lib/x.py'\n");
    let c = FilterChain::builder()
        .inline("b.toml", "", text)
        .build()
        .unwrap();
    assert_eq!(c.rules()[0].selector().pattern(), "usr/lib/x.py");
}

#[test]
fn f3_non_file_patterns_are_not_rewritten() {
    assert_eq!(pattern("pkg:./a"), "./a");
    assert_eq!(pattern("obj:literal:/x/../y"), "/x/../y");
}
