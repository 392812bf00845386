//! One test per rule of spec Part N that the globals engine implements, named after the
//! rule (N5, filters, belongs to the filter engine).

use ct_recorder::naming::{
    AttrValue, CodeFacts, Engine, FallbackReason, GlobalsName, GlobalsNamer, MemObject, MemTable,
    ModuleNamer, Naming, ObjectAttrs,
};

fn module_facts(filename: &str, globals_name: GlobalsName) -> CodeFacts {
    CodeFacts::new(filename, "<module>", globals_name, None)
}

fn name_of(globals_name: GlobalsName) -> Naming {
    GlobalsNamer::new().name(&module_facts("/x/m.py", globals_name), &MemTable::new())
}

fn str_name(raw: &str) -> Naming {
    name_of(GlobalsName::Str(raw.to_string()))
}

#[test]
fn n1_accepts_a_str_name_as_is() {
    let n = str_name("pkg.core");
    assert_eq!(n, Naming::named("pkg.core"));
    assert_eq!(n.label(true, "<module>"), "<pkg.core>");
    assert_eq!(GlobalsNamer::new().engine(), Engine::Globals);
}

#[test]
fn n1_trims_surrounding_whitespace_and_uses_the_trimmed_text() {
    assert_eq!(str_name("  pkg.core\t\n").name.as_deref(), Some("pkg.core"));
    assert_eq!(str_name("\u{a0}mod\u{2003}").name.as_deref(), Some("mod"));
    assert_eq!(
        str_name(" a b ").name.as_deref(),
        Some("a b"),
        "inner spaces stay"
    );
}

#[test]
fn n1_has_no_identifier_validation() {
    for raw in ["<run_path>", "my-mod", "1up", "é.ü", "a..b"] {
        assert_eq!(str_name(raw).name.as_deref(), Some(raw));
    }
    assert_eq!(
        str_name("<run_path>").label(true, "<module>"),
        "<<run_path>>"
    );
}

#[test]
fn n2_ignores_sys_modules_sys_path_and_the_file_name() {
    let mut table = MemTable::new();
    table.set(
        "legacy.name",
        MemObject::new(ObjectAttrs {
            file: AttrValue::str("/srv/app/src/mypkg/core.py"),
            ..ObjectAttrs::default()
        }),
    );
    let mut engine = GlobalsNamer::new();
    let facts = module_facts(
        "/srv/app/src/mypkg/core.py",
        GlobalsName::Str("mypkg.core".into()),
    );
    assert_eq!(
        engine.name(&facts, &table).name.as_deref(),
        Some("mypkg.core")
    );
    // A relative or synthetic co_filename makes no difference either.
    for filename in ["rel/core.py", "<string>", ""] {
        let facts = module_facts(filename, GlobalsName::Str("mypkg.core".into()));
        assert_eq!(
            engine.name(&facts, &table).name.as_deref(),
            Some("mypkg.core")
        );
    }
}

#[test]
fn n3_main_scripts_and_runners_are_named_main() {
    let mut engine = GlobalsNamer::new();
    let facts = CodeFacts::new(
        "/srv/app/pkg/mod.py",
        "<module>",
        GlobalsName::Str("__main__".into()),
        Some("pkg.mod".into()),
    );
    // `python -m pkg.mod`: the spec name is a fact, not the engine's answer.
    assert_eq!(
        engine.name(&facts, &MemTable::new()).name.as_deref(),
        Some("__main__")
    );
}

#[test]
fn n3_custom_run_names_are_taken_as_given() {
    assert_eq!(str_name("<run_path>").name.as_deref(), Some("<run_path>"));
    assert_eq!(
        str_name("loader_chosen").name.as_deref(),
        Some("loader_chosen")
    );
}

#[test]
fn n4_missing_name_gives_module_label() {
    let n = name_of(GlobalsName::Missing);
    assert_eq!(n, Naming::fallback(FallbackReason::Missing));
    assert_eq!(n.label(true, "<module>"), "<module>");
}

#[test]
fn n4_non_str_name_gives_module_label() {
    let n = name_of(GlobalsName::NotStr {
        type_name: "int".into(),
    });
    assert_eq!(n, Naming::fallback(FallbackReason::NotStr));
    assert_eq!(n.label(true, "<module>"), "<module>");
}

#[test]
fn n4_blank_name_gives_module_label() {
    for raw in ["", "   ", "\t\n"] {
        let n = str_name(raw);
        assert_eq!(n, Naming::fallback(FallbackReason::Empty), "{raw:?}");
        assert_eq!(n.label(true, "<module>"), "<module>");
    }
}

#[test]
fn n4_frame_without_globals_gives_module_label() {
    assert_eq!(
        name_of(GlobalsName::NoGlobals),
        Naming::fallback(FallbackReason::NoGlobals)
    );
}

#[test]
fn n6_functions_keep_their_qualname_and_get_no_module_name() {
    let mut engine = GlobalsNamer::new();
    let facts = CodeFacts::new(
        "/x/m.py",
        "Klass.method",
        GlobalsName::Str("renamed_in_body".into()),
        None,
    );
    assert!(!facts.is_module);
    let n = engine.name(&facts, &MemTable::new());
    assert_eq!(n, Naming::not_applicable());
    assert_eq!(n.label(false, &facts.qualname), "Klass.method");
}

#[test]
fn n7_path_shaped_pipeline_names_are_replaced_by_dunder_name() {
    // F4.2/F4.3 gave `tmp.x.app` for /tmp/x/app.py run as a script; `__name__` wins now.
    let facts = module_facts("/tmp/x/app.py", GlobalsName::Str("__main__".into()));
    let n = GlobalsNamer::new().name(&facts, &MemTable::new());
    assert_eq!(n.label(true, "<module>"), "<__main__>");
}
