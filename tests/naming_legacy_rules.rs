//! One test per rule of spec Part L (and F4.3), named after the rule. Pure Rust: the
//! in-memory `sys.modules`, temporary directories for the filesystem heuristics.
#![cfg(feature = "legacy-resolver")]

use std::fs;
use std::path::Path;

use ct_recorder::naming::legacy::paths::{
    filesystem_shaped_name, normalise, normalise_into, normalised, relative_to_dotted,
};
use ct_recorder::naming::legacy::roots::{
    candidate_from_roots, heuristic_name, heuristic_root, path_candidate, root_remainder,
    session_roots, PROJECT_MARKERS,
};
use ct_recorder::naming::legacy::scan::{reference_scan, ScanStats};
use ct_recorder::naming::legacy::{
    legacy_filter_module_name, name_with_hints, sanitise, Hints, LegacyNamer, LegacyResolver,
    ScanStrategy, SysPathEntry,
};
use ct_recorder::naming::{
    AttrValue, CodeFacts, FallbackReason, GlobalsName, MemObject, MemTable, MemValue, ModuleNamer,
    ObjectAttrs, SpecValue,
};

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn entries(list: &[&str]) -> Vec<SysPathEntry> {
    list.iter().map(|e| SysPathEntry::from(*e)).collect()
}

/// A module object with only `__file__` and `__name__`.
fn file_module(name: &str, file: &str) -> MemObject {
    MemObject::new(ObjectAttrs {
        file: AttrValue::str(file),
        name: AttrValue::str(name),
        ..ObjectAttrs::default()
    })
}

fn scan(target: &str, table: &MemTable) -> Option<String> {
    reference_scan(target, table, &mut ScanStats::default())
}

/// Both scanners must agree on every hand-written case too.
fn scan_both(target: &str, table: &MemTable) -> Option<String> {
    let reference = scan(target, table);
    let mut resolver = LegacyResolver::new(&[], None);
    assert_eq!(
        resolver.scan(target, table),
        reference,
        "cached scan differs"
    );
    reference
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 temp path").to_string()
}

// ---------------------------------------------------------------- L1.1 normalisation

#[test]
fn l1_1_drops_empty_and_dot_segments() {
    assert_eq!(normalise("a//b/./c/"), s("a/b/c"));
    assert_eq!(normalise("./a/."), s("a"));
    assert_eq!(normalise("/x/./y//z.py"), s("/x/y/z.py"));
}

#[test]
fn l1_1_keeps_dotdot_segments_lexically() {
    assert_eq!(normalise("/a/../b"), s("/a/../b"));
    assert_eq!(normalise("../x.py"), s("../x.py"));
}

#[test]
fn l1_1_absolute_input_keeps_one_leading_slash() {
    assert_eq!(normalise("//a//b"), s("/a/b"));
    assert_eq!(normalise("///a"), s("/a"));
}

#[test]
fn l1_1_root_normalises_to_empty_string() {
    assert_eq!(normalise("/"), s(""));
    assert_eq!(normalise("//./"), s(""));
}

#[test]
fn l1_1_empty_or_dot_only_input_gives_nothing() {
    assert_eq!(normalise(""), None);
    assert_eq!(normalise("."), None);
    assert_eq!(normalise("././"), None);
}

#[test]
fn l1_1_backslashes_are_ordinary_characters() {
    assert_eq!(normalise(r"C:\x\y.py"), s(r"C:\x\y.py"));
    assert_eq!(normalise(r"/a\./b"), s(r"/a\./b"));
}

// ---------------------------------------------------------------- L1.2 relative → dotted

#[test]
fn l1_2_strips_py_suffix_and_joins_with_dots() {
    assert_eq!(relative_to_dotted("pkg/sub/mod.py"), s("pkg.sub.mod"));
    assert_eq!(relative_to_dotted("//pkg//mod.py"), s("pkg.mod"));
}

#[test]
fn l1_2_init_segment_is_dropped() {
    assert_eq!(relative_to_dotted("pkg/__init__.py"), s("pkg"));
    assert_eq!(relative_to_dotted("__init__.py"), None);
    // Only a last segment is special.
    assert_eq!(relative_to_dotted("__init__/x.py"), s("__init__.x"));
}

#[test]
fn l1_2_other_last_segments_kept_word_for_word() {
    assert_eq!(relative_to_dotted("pkg/mod.pyc"), s("pkg.mod.pyc"));
    assert_eq!(relative_to_dotted("tool.pyw"), s("tool.pyw"));
    assert_eq!(relative_to_dotted("a/data.txt"), s("a.data.txt"));
    assert_eq!(relative_to_dotted("a/__init__.pyc"), s("a.__init__.pyc"));
    // A bare `.py` last segment leaves an empty part (the reference's join).
    assert_eq!(relative_to_dotted("a/.py"), s("a."));
    assert_eq!(relative_to_dotted(".py"), s(""));
    assert_eq!(relative_to_dotted("a/b/__init__.py/"), s("a.b"));
    assert_eq!(relative_to_dotted("//"), None);
}

#[test]
fn l1_2_nothing_left_gives_nothing() {
    assert_eq!(relative_to_dotted(""), None);
    assert_eq!(relative_to_dotted("///"), None);
}

#[test]
fn l1_2_result_is_not_validated() {
    assert_eq!(relative_to_dotted("my-scripts/run.py"), s("my-scripts.run"));
    assert_eq!(relative_to_dotted("../../x.py"), s("......x"));
    assert_eq!(relative_to_dotted("a b/é.py"), s("a b.é"));
}

// ---------------------------------------------------------------- L1.3 fs-shaped name

#[test]
fn l1_3_filesystem_shaped_name_strips_leading_slashes_and_drive() {
    assert_eq!(
        filesystem_shaped_name("/home/ana/app/tool.py"),
        s("home.ana.app.tool")
    );
    assert_eq!(filesystem_shaped_name("///x/y.py"), s("x.y"));
    assert_eq!(filesystem_shaped_name("/C:/proj/m.py"), s("proj.m"));
    assert_eq!(filesystem_shaped_name("C:/m.py"), s("m"));
    assert_eq!(filesystem_shaped_name("C:"), None);
    assert_eq!(filesystem_shaped_name("rel/m.py"), s("rel.m"));
}

// ---------------------------------------------------------------- L2 session roots

#[test]
fn l2_1_roots_are_fixed_when_the_resolver_is_created() {
    let mut sys_path = entries(&["/first"]);
    let resolver = LegacyResolver::new(&sys_path, Some("/cwd"));
    sys_path.push(SysPathEntry::from("/later"));
    assert_eq!(resolver.roots(), ["/first"]);
    let table = MemTable::new();
    let mut resolver = resolver;
    assert_eq!(
        resolver.resolve("/later/pkg/m.py", &table),
        s("m"),
        "heuristics, not /later"
    );
}

#[test]
fn l2_2_non_str_entries_are_skipped() {
    let sys_path = vec![
        SysPathEntry::NotStr,
        SysPathEntry::from("/a"),
        SysPathEntry::NotStr,
    ];
    assert_eq!(session_roots(&sys_path, Some("/cwd")), ["/a"]);
}

#[test]
fn l2_2_empty_entry_is_the_normalised_cwd() {
    assert_eq!(
        session_roots(&entries(&[""]), Some("/home//ana/./proj/")),
        ["/home/ana/proj"]
    );
}

#[test]
fn l2_2_entries_normalising_to_nothing_disappear() {
    assert_eq!(
        session_roots(&entries(&[".", "./", "/x"]), Some("/cwd")),
        ["/x"]
    );
}

#[test]
fn l2_2_entries_are_normalised() {
    assert_eq!(session_roots(&entries(&["/a//b/./"]), None), ["/a/b"]);
}

#[test]
fn l2_3_slash_entry_acts_like_the_cwd() {
    assert_eq!(
        session_roots(&entries(&["/"]), Some("/work/p")),
        ["/work/p"]
    );
}

#[test]
fn l2_3_empty_root_without_cwd_becomes_slash() {
    assert_eq!(session_roots(&entries(&["/", ""]), None), ["/"]);
}

#[test]
fn l2_4_sorted_longest_first_ties_ascending_then_deduplicated() {
    let roots = session_roots(
        &entries(&["/b", "/aa/x", "/a", "/bb", "/aa", "/a", "/a/"]),
        Some("/cwd"),
    );
    assert_eq!(roots, ["/aa/x", "/aa", "/bb", "/a", "/b"]);
}

#[test]
fn l2_5_relative_entries_stay_relative_and_match_only_relative_targets() {
    let roots = session_roots(&entries(&["src"]), Some("/cwd"));
    assert_eq!(roots, ["src"]);
    assert_eq!(candidate_from_roots(&roots, "src/pkg/m.py"), s("pkg.m"));
    assert_eq!(candidate_from_roots(&roots, "/cwd/src/pkg/m.py"), None);
}

// ---------------------------------------------------------------- L3 path candidate

#[test]
fn l3_1_root_match_is_by_characters_not_components() {
    assert_eq!(
        root_remainder("/opt/app", "/opt/application/m.py"),
        Some("lication/m.py")
    );
    assert_eq!(
        candidate_from_roots(&["/opt/app".to_string()], "/opt/application/m.py"),
        s("lication.m")
    );
}

#[test]
fn l3_1_at_most_one_slash_is_removed_and_empty_remainder_is_no_match() {
    assert_eq!(root_remainder("/opt", "/opt/m.py"), Some("m.py"));
    assert_eq!(root_remainder("/opt", "/opt"), None);
    assert_eq!(root_remainder("/opt", "/opt/"), None);
    assert_eq!(root_remainder("", "/opt/m.py"), None);
    assert_eq!(root_remainder("/opt", "/other/m.py"), None);
}

#[test]
fn l3_1_slash_root_matches_any_absolute_target() {
    assert_eq!(root_remainder("/", "/x/m.py"), Some("x/m.py"));
    assert_eq!(root_remainder("/", "x/m.py"), None);
}

#[test]
fn l3_2_first_root_that_converts_wins_and_init_at_a_root_is_passed_over() {
    let roots = session_roots(&entries(&["/p", "/p/src"]), None);
    assert_eq!(
        candidate_from_roots(&roots, "/p/src/pkg/mod.py"),
        s("pkg.mod")
    );
    // `/p/src/__init__.py` converts to nothing under `/p/src`; `/p` gives `src`.
    assert_eq!(candidate_from_roots(&roots, "/p/src/__init__.py"), s("src"));
}

#[test]
fn l3_3_heuristics_do_not_run_when_a_root_gives_a_non_filesystem_name() {
    let dir = tempdir();
    let root = path_str(dir.path());
    fs::create_dir_all(dir.path().join("proj/pkg")).unwrap();
    fs::write(dir.path().join("proj/pyproject.toml"), "").unwrap();
    let target = format!("{root}/proj/pkg/m.py");
    // Without roots, the marker decides: proj is the heuristic root.
    assert_eq!(path_candidate(&[], &target), s("pkg.m"));
    // A sys.path root gives a name that is not the filesystem-shaped one: it stays.
    assert_eq!(
        path_candidate(std::slice::from_ref(&root), &target),
        s("proj.pkg.m")
    );
}

#[test]
fn l3_3_heuristics_run_when_the_candidate_is_the_filesystem_shaped_name() {
    let dir = tempdir();
    fs::create_dir_all(dir.path().join("proj/pkg")).unwrap();
    fs::write(dir.path().join("proj/setup.cfg"), "").unwrap();
    let target = format!("{}/proj/pkg/m.py", path_str(dir.path()));
    // The `/` root (unknown cwd) yields the filesystem-shaped name: heuristics replace it.
    let roots = session_roots(&entries(&[""]), None);
    assert_eq!(roots, ["/"]);
    assert_eq!(path_candidate(&roots, &target), s("pkg.m"));
}

#[test]
fn l3_3_when_heuristics_find_nothing_the_candidate_stays() {
    // Directly under `/`: the heuristic root normalises to the empty root.
    let roots = vec!["/".to_string()];
    assert_eq!(heuristic_name("/ct_recorder_no_such_file.py"), None);
    assert_eq!(
        path_candidate(&roots, "/ct_recorder_no_such_file.py"),
        s("ct_recorder_no_such_file")
    );
}

#[test]
fn l3_4_nearest_marked_ancestor_is_the_heuristic_root() {
    let dir = tempdir();
    let base = path_str(dir.path());
    fs::create_dir_all(dir.path().join("outer/inner/pkg")).unwrap();
    fs::write(dir.path().join("outer/setup.py"), "").unwrap();
    fs::create_dir(dir.path().join("outer/inner/.hg")).unwrap();
    let target = format!("{base}/outer/inner/pkg/m.py");
    assert_eq!(heuristic_root(&target), s(&format!("{base}/outer/inner")));
    assert_eq!(heuristic_name(&target), s("pkg.m"));
}

#[test]
fn l3_4_every_marker_kind_counts_files_and_directories_alike() {
    for marker in PROJECT_MARKERS {
        for as_dir in [false, true] {
            let dir = tempdir();
            fs::create_dir_all(dir.path().join("proj/a")).unwrap();
            let m = dir.path().join("proj").join(marker);
            if as_dir {
                fs::create_dir(&m).unwrap();
            } else {
                fs::write(&m, "").unwrap();
            }
            let target = format!("{}/proj/a/m.py", path_str(dir.path()));
            assert_eq!(heuristic_name(&target), s("a.m"), "{marker} dir={as_dir}");
        }
    }
}

#[test]
fn l3_4_symlinked_markers_are_followed_and_dangling_ones_do_not_count() {
    let dir = tempdir();
    fs::create_dir_all(dir.path().join("proj/a")).unwrap();
    fs::write(dir.path().join("real.toml"), "").unwrap();
    let link = dir.path().join("proj/pyproject.toml");
    std::os::unix::fs::symlink(dir.path().join("real.toml"), &link).unwrap();
    let target = format!("{}/proj/a/m.py", path_str(dir.path()));
    assert_eq!(heuristic_name(&target), s("a.m"));
    fs::remove_file(dir.path().join("real.toml")).unwrap();
    // Dangling: no marker anywhere, the parent `a` is the root.
    assert_eq!(heuristic_name(&target), s("m"));
}

#[test]
fn l3_4_without_marker_the_parent_directory_is_the_root() {
    let dir = tempdir();
    fs::create_dir_all(dir.path().join("x/y")).unwrap();
    let target = format!("{}/x/y/m.py", path_str(dir.path()));
    assert_eq!(
        heuristic_root(&target),
        s(&format!("{}/x/y", path_str(dir.path())))
    );
    assert_eq!(heuristic_name(&target), s("m"));
    let init = format!("{}/x/y/__init__.py", path_str(dir.path()));
    assert_eq!(
        heuristic_name(&init),
        None,
        "__init__ directly under the root"
    );
}

#[test]
fn l3_4_root_directory_as_heuristic_root_gives_nothing() {
    assert_eq!(heuristic_root("/m.py"), s("/"));
    assert_eq!(heuristic_name("/m.py"), None);
}

#[test]
fn l3_4_relative_target_ignores_a_marker_in_the_cwd() {
    // Integration tests run in the package directory, which holds `.git`.
    assert!(
        Path::new(".git").exists(),
        "test premise: marker in the cwd"
    );
    assert_eq!(
        heuristic_root("ct_no_such_dir/sub/m.py"),
        s("ct_no_such_dir/sub")
    );
    assert_eq!(heuristic_name("ct_no_such_dir/sub/m.py"), s("m"));
}

#[test]
fn l3_4_bare_relative_file_name_has_no_heuristic_root() {
    assert_eq!(heuristic_root("m.py"), None);
    assert_eq!(heuristic_name("m.py"), None);
}

// ---------------------------------------------------------------- L4 sys.modules scan

#[test]
fn l4_1_entries_are_scanned_in_insertion_order() {
    let mut t = MemTable::new();
    t.set("b-first", file_module("b-first", "/p/m.py"));
    t.set("a-second", file_module("a-second", "/p/m.py"));
    assert_eq!(scan_both("/p/m.py", &t), s("b-first"));
    t.remove("b-first");
    t.set("b-first", file_module("b-first", "/p/m.py"));
    assert_eq!(scan_both("/p/m.py", &t), s("a-second"));
}

#[test]
fn l4_2_non_str_key_aborts_whole_scan() {
    let mut t = MemTable::new();
    t.set("bad-name", file_module("bad-name", "/p/m.py"));
    t.insert_non_str_key(file_module("x", "/elsewhere.py"));
    assert_eq!(
        scan_both("/p/m.py", &t),
        None,
        "even with a score-1 match found"
    );
    // Also when the value under the non-str key is None.
    let mut t = MemTable::new();
    t.insert_non_str_key(MemValue::None);
    t.set("m", file_module("m", "/p/m.py"));
    assert_eq!(scan_both("/p/m.py", &t), None);
}

#[test]
fn l4_2_score_zero_match_before_a_non_str_key_still_wins() {
    let mut t = MemTable::new();
    t.set("m", file_module("m", "/p/m.py"));
    t.insert_non_str_key(file_module("x", "/p/x.py"));
    assert_eq!(scan_both("/p/m.py", &t), s("m"));
}

#[test]
fn l4_2_none_values_are_skipped() {
    let mut t = MemTable::new();
    t.set("blocked", MemValue::None);
    t.set("m", file_module("m", "/p/m.py"));
    assert_eq!(scan_both("/p/m.py", &t), s("m"));
}

#[test]
fn l4_3_each_candidate_attribute_can_match() {
    let only = |attrs: ObjectAttrs| {
        let mut t = MemTable::new();
        t.set("k", MemObject::new(attrs));
        scan_both("/p/m.py", &t)
    };
    let origin = ObjectAttrs {
        spec: SpecValue::object(AttrValue::str("/p/m.py"), AttrValue::Absent),
        ..ObjectAttrs::default()
    };
    let file = ObjectAttrs {
        file: AttrValue::str("/p/m.py"),
        ..ObjectAttrs::default()
    };
    let cached = ObjectAttrs {
        cached: AttrValue::str("/p/m.pyc"),
        ..ObjectAttrs::default()
    };
    assert_eq!(only(origin), s("k"));
    assert_eq!(only(file), s("k"));
    assert_eq!(only(cached), s("k"));
    assert_eq!(only(ObjectAttrs::default()), None);
}

#[test]
fn l4_3_candidates_are_normalised() {
    let mut t = MemTable::new();
    t.set("m", file_module("m", "//p/./m.py"));
    assert_eq!(scan_both("/p/m.py", &t), s("m"));
    // `..` is not resolved.
    let mut t = MemTable::new();
    t.set("m", file_module("m", "/p/x/../m.py"));
    assert_eq!(scan_both("/p/m.py", &t), None);
}

#[test]
fn l4_3_non_str_hook_only_and_absent_candidates_are_ignored() {
    for bad in [AttrValue::NotStr, AttrValue::HookOnly, AttrValue::Absent] {
        let mut t = MemTable::new();
        t.set(
            "m",
            MemObject::new(ObjectAttrs {
                spec: SpecValue::object(bad.clone(), AttrValue::str("m")),
                file: bad.clone(),
                cached: bad.clone(),
                name: AttrValue::str("m"),
            }),
        );
        assert_eq!(scan_both("/p/m.py", &t), None, "{bad:?}");
    }
}

#[test]
fn l4_3_spec_origin_is_used_only_when_spec_is_an_object() {
    // With `__spec__` None or absent, only `__file__`/`__cached__` are candidates.
    for spec in [SpecValue::None, SpecValue::Absent, SpecValue::HookOnly] {
        let mut t = MemTable::new();
        t.set(
            "m",
            MemObject::new(ObjectAttrs {
                spec: spec.clone(),
                file: AttrValue::str("/p/m.py"),
                ..ObjectAttrs::default()
            }),
        );
        assert_eq!(scan_both("/p/m.py", &t), s("m"), "{spec:?}");
        assert_eq!(scan_both("/p/other.py", &t), None);
    }
}

#[test]
fn l4_4_legacy_pyc_candidate_matches_py_target() {
    let mut t = MemTable::new();
    t.set("m", file_module("m", "/p/m.pyc"));
    assert_eq!(scan_both("/p/m.py", &t), s("m"));
    assert_eq!(scan_both("/p/m.pyc", &t), s("m"), "plain equality");
}

#[test]
fn l4_4_py_candidate_does_not_match_pyc_target() {
    let mut t = MemTable::new();
    t.set("m", file_module("m", "/p/m.py"));
    assert_eq!(scan_both("/p/m.pyc", &t), None);
    assert_eq!(scan_both("/p/m.pyw", &t), None);
}

#[test]
fn l4_4_pycache_pyc_never_matches_the_source() {
    let mut t = MemTable::new();
    t.set(
        "m",
        MemObject::new(ObjectAttrs {
            cached: AttrValue::str("/p/__pycache__/m.cpython-311.pyc"),
            ..ObjectAttrs::default()
        }),
    );
    assert_eq!(scan_both("/p/m.py", &t), None);
}

#[test]
fn l4_5_preferred_name_is_spec_name_then_name_then_key() {
    let with = |spec_name: AttrValue, name: AttrValue| {
        let mut t = MemTable::new();
        t.set(
            "the_key",
            MemObject::new(ObjectAttrs {
                spec: SpecValue::object(AttrValue::str("/p/m.py"), spec_name),
                name,
                ..ObjectAttrs::default()
            }),
        );
        scan_both("/p/m.py", &t)
    };
    assert_eq!(
        with(AttrValue::str("spec.name"), AttrValue::str("dunder")),
        s("spec.name")
    );
    assert_eq!(
        with(AttrValue::str(""), AttrValue::str("dunder")),
        s("dunder")
    );
    assert_eq!(
        with(AttrValue::NotStr, AttrValue::str("dunder")),
        s("dunder")
    );
    assert_eq!(with(AttrValue::HookOnly, AttrValue::str("")), s("the_key"));
    assert_eq!(with(AttrValue::Absent, AttrValue::NotStr), s("the_key"));
}

#[test]
fn l4_5_main_entry_of_python_dash_m_is_named_after_its_spec() {
    let mut t = MemTable::new();
    t.set(
        "__main__",
        MemObject::new(ObjectAttrs {
            spec: SpecValue::object(AttrValue::str("/p/pkg/mod.py"), AttrValue::str("pkg.mod")),
            file: AttrValue::str("/p/pkg/mod.py"),
            name: AttrValue::str("__main__"),
            ..ObjectAttrs::default()
        }),
    );
    assert_eq!(scan_both("/p/pkg/mod.py", &t), s("pkg.mod"));
}

#[test]
fn l4_5_an_empty_key_is_still_the_last_resort() {
    let mut t = MemTable::new();
    t.set(
        "",
        MemObject::new(ObjectAttrs {
            file: AttrValue::str("/p/m.py"),
            ..Default::default()
        }),
    );
    assert_eq!(scan_both("/p/m.py", &t), s(""));
}

#[test]
fn l4_6_a_later_valid_name_replaces_an_invalid_one() {
    let mut t = MemTable::new();
    t.set("my-mod", file_module("my-mod", "/p/m.py"));
    t.set("good", file_module("good", "/p/m.py"));
    assert_eq!(scan_both("/p/m.py", &t), s("good"));
}

#[test]
fn l4_6_first_of_equal_scores_is_kept() {
    let mut t = MemTable::new();
    t.set("bad-1", file_module("bad-1", "/p/m.py"));
    t.set("bad-2", file_module("bad-2", "/p/m.py"));
    assert_eq!(scan_both("/p/m.py", &t), s("bad-1"));
}

#[test]
fn l4_6_first_score_zero_match_ends_the_scan() {
    let mut t = MemTable::new();
    t.set("first", file_module("first", "/p/m.py"));
    for i in 0..10 {
        t.set(
            &format!("later{i}"),
            file_module("x", &format!("/p/x{i}.py")),
        );
    }
    let mut stats = ScanStats::default();
    assert_eq!(reference_scan("/p/m.py", &t, &mut stats), s("first"));
    assert_eq!(
        stats.entries_read, 1,
        "nothing after the score-0 match is read"
    );
}

#[test]
fn l4_7_hook_only_attributes_count_as_absent_and_are_counted() {
    let mut t = MemTable::new();
    t.set(
        "lazy",
        MemObject::new(ObjectAttrs {
            spec: SpecValue::HookOnly,
            file: AttrValue::HookOnly,
            cached: AttrValue::Absent,
            name: AttrValue::HookOnly,
        }),
    );
    t.set(
        "half",
        MemObject::new(ObjectAttrs {
            spec: SpecValue::object(AttrValue::HookOnly, AttrValue::str("half")),
            file: AttrValue::str("/p/half.py"),
            ..ObjectAttrs::default()
        }),
    );
    let mut stats = ScanStats::default();
    assert_eq!(reference_scan("/p/m.py", &t, &mut stats), None);
    assert_eq!(stats.hook_only_attrs, 4);
    let mut resolver = LegacyResolver::new(&[], None);
    assert_eq!(resolver.scan("/p/half.py", &t), s("half"));
    assert_eq!(resolver.stats().scan.hook_only_attrs, 4);
}

// ---------------------------------------------------------------- L5 resolve

#[test]
fn l5_1_path_cache_answers_repeated_lookups() {
    let mut t = MemTable::new();
    t.set("pkg.m", file_module("pkg.m", "/nowhere/pkg/m.py"));
    let mut r = LegacyResolver::new(&[], None);
    assert_eq!(r.resolve("/nowhere/pkg/m.py", &t), s("pkg.m"));
    assert_eq!(r.cached_name("/nowhere/pkg/m.py"), Some("pkg.m"));
    t.remove("pkg.m");
    assert_eq!(r.resolve("/nowhere/pkg/m.py", &t), s("pkg.m"));
    assert_eq!(r.stats().path_cache_hits, 1);
    assert_eq!(r.stats().scan.scans, 1);
}

#[test]
fn l5_3_scan_name_wins_over_path_candidate_and_is_cached() {
    let mut t = MemTable::new();
    t.set("alias", file_module("alias", "/root/pkg/m.py"));
    let mut r = LegacyResolver::new(&entries(&["/root"]), None);
    assert_eq!(r.path_candidate("/root/pkg/m.py"), s("pkg.m"));
    assert_eq!(r.resolve("/root/pkg/m.py", &t), s("alias"));
    assert_eq!(r.cached_name("/root/pkg/m.py"), Some("alias"));
}

#[test]
fn l5_4_path_only_names_are_not_cached_and_follow_the_filesystem() {
    let dir = tempdir();
    fs::create_dir_all(dir.path().join("proj/pkg")).unwrap();
    let target = format!("{}/proj/pkg/m.py", path_str(dir.path()));
    let t = MemTable::new();
    let mut r = LegacyResolver::new(&[], None);
    assert_eq!(r.resolve(&target, &t), s("m"));
    assert_eq!(r.cached_name(&target), None);
    fs::write(dir.path().join("proj/pyproject.toml"), "").unwrap();
    assert_eq!(r.resolve(&target, &t), s("pkg.m"));
}

#[test]
fn l5_4_path_only_names_follow_sys_modules_until_found_there() {
    let mut t = MemTable::new();
    let mut r = LegacyResolver::new(&entries(&["/root"]), None);
    assert_eq!(r.resolve("/root/pkg/m.py", &t), s("pkg.m"));
    t.set("other", file_module("other", "/root/pkg/m.py"));
    assert_eq!(r.resolve("/root/pkg/m.py", &t), s("other"));
}

#[test]
fn l5_consequence_a_file_run_again_under_another_name_gets_the_old_name() {
    let mut t = MemTable::new();
    t.set("src.pkg", file_module("src.pkg", "/p/src/pkg/__init__.py"));
    let mut r = LegacyResolver::new(&entries(&["/p"]), None);
    assert_eq!(r.resolve("/p/src/pkg/__init__.py", &t), s("src.pkg"));
    t.remove("src.pkg");
    t.set("pkg", file_module("pkg", "/p/src/pkg/__init__.py"));
    assert_eq!(r.resolve("/p/src/pkg/__init__.py", &t), s("src.pkg"));
}

#[test]
fn l5_strategies_agree() {
    let mut t = MemTable::new();
    t.set("bad-name", file_module("bad-name", "/r/a.py"));
    t.set("a", file_module("a", "/r/a.py"));
    let mut cached = LegacyResolver::new(&entries(&["/r"]), None);
    let mut reference = LegacyResolver::new(&entries(&["/r"]), None);
    reference.set_scan_strategy(ScanStrategy::Reference);
    for target in ["/r/a.py", "/r/b.py", "/r/a.py"] {
        assert_eq!(cached.resolve(target, &t), reference.resolve(target, &t));
    }
}

// ---------------------------------------------------------------- L6 namer

fn facts(filename: &str, qualname: &str) -> CodeFacts {
    CodeFacts::new(filename, qualname, GlobalsName::Missing, None)
}

#[test]
fn l6_2_sanitise_trims_and_accepts_only_valid_dotted_names() {
    assert_eq!(sanitise("  pkg.mod\n"), s("pkg.mod"));
    assert_eq!(sanitise("my-mod"), None);
    assert_eq!(sanitise("   "), None);
    assert_eq!(sanitise("<run_path>"), None);
}

#[test]
fn l6_3_resolution_order_is_preferred_relative_absolute_globals() {
    let mut t = MemTable::new();
    t.set("abs.name", file_module("abs.name", "/x/m.py"));
    let mut r = LegacyResolver::new(&[], None);
    let all = Hints {
        preferred: Some(" pref "),
        relative: Some("rel/m.py"),
        absolute: Some("/x/m.py"),
        globals: Some("glob"),
    };
    assert_eq!(name_with_hints(&mut r, &all, "/x/m.py", &t), s("pref"));
    let h = Hints {
        preferred: Some("bad-pref"),
        ..all
    };
    assert_eq!(name_with_hints(&mut r, &h, "/x/m.py", &t), s("rel.m"));
    let h = Hints {
        preferred: None,
        relative: Some(""),
        ..all
    };
    assert_eq!(name_with_hints(&mut r, &h, "/x/m.py", &t), s("abs.name"));
    let h = Hints {
        preferred: None,
        relative: None,
        absolute: None,
        globals: Some(" glob "),
    };
    assert_eq!(name_with_hints(&mut r, &h, "rel.py", &t), s("glob"));
    let h = Hints {
        globals: Some("bad name"),
        ..h
    };
    assert_eq!(name_with_hints(&mut r, &h, "rel.py", &t), None);
}

#[test]
fn l6_3_relative_hint_is_not_validated() {
    let mut r = LegacyResolver::new(&[], None);
    let h = Hints {
        relative: Some("my-scripts/run.py"),
        ..Hints::default()
    };
    assert_eq!(
        name_with_hints(&mut r, &h, "/x.py", &MemTable::new()),
        s("my-scripts.run")
    );
}

#[test]
fn l6_3_globals_main_overrides_whatever_was_found() {
    let mut r = LegacyResolver::new(&[], None);
    let h = Hints {
        preferred: Some("pkg.mod"),
        globals: Some(" __main__ "),
        ..Hints::default()
    };
    assert_eq!(
        name_with_hints(&mut r, &h, "/x.py", &MemTable::new()),
        s("__main__")
    );
}

#[test]
fn l6_4_absolute_co_filename_is_resolved_when_no_absolute_hint() {
    let mut t = MemTable::new();
    t.set("m", file_module("m", "/x/m.py"));
    let mut r = LegacyResolver::new(&[], None);
    assert_eq!(
        name_with_hints(&mut r, &Hints::default(), "/x/./m.py", &t),
        s("m")
    );
    // An absolute hint that resolves to nothing stops L6.4.
    let h = Hints {
        absolute: Some("nothing.txt"),
        ..Hints::default()
    };
    assert_eq!(name_with_hints(&mut r, &h, "/x/m.py", &t), None);
}

#[test]
fn l6_4_relative_co_filename_stays_unresolved() {
    let mut t = MemTable::new();
    t.set("m", file_module("m", "rel/m.py"));
    let mut r = LegacyResolver::new(&entries(&["rel"]), Some("/cwd"));
    assert_eq!(
        name_with_hints(&mut r, &Hints::default(), "rel/m.py", &t),
        None
    );
    let mut namer = LegacyNamer::new(LegacyResolver::new(&entries(&["rel"]), None));
    let n = namer.name(&facts("rel/m.py", "<module>"), &t);
    assert_eq!(n.name, None);
    assert_eq!(n.fallback, Some(FallbackReason::RelativeFilename));
    let n = namer.name(&facts("<string>", "<module>"), &t);
    assert_eq!(n.fallback, Some(FallbackReason::SyntheticFilename));
}

#[test]
fn l6_5_label_wraps_the_unvalidated_name() {
    let mut t = MemTable::new();
    t.set(
        "<run_path>",
        MemObject::new(ObjectAttrs {
            file: AttrValue::str("/x/script.py"),
            ..ObjectAttrs::default()
        }),
    );
    let mut namer = LegacyNamer::new(LegacyResolver::new(&entries(&["/x"]), None));
    let n = namer.name(&facts("/x/script.py", "<module>"), &t);
    assert_eq!(n.label(true, "<module>"), "<<run_path>>");
    let n = namer.name(&facts("/x/script.py", "main"), &t);
    assert_eq!(n.name, s("<run_path>"), "functions are named too");
    assert_eq!(n.label(false, "main"), "main");
}

// ---------------------------------------------------------------- L7 wiring

#[test]
fn l7_runtime_engine_is_l5_on_the_normalised_co_filename() {
    let mut t = MemTable::new();
    let mut namer = LegacyNamer::new(LegacyResolver::new(&entries(&["/srv/app"]), Some("/srv")));
    let n = namer.name(&facts("/srv/app//pkg/./core.py", "<module>"), &t);
    assert_eq!(n.name, s("pkg.core"));
    t.set("__main__", file_module("__main__", "/srv/app/run.py"));
    let n = namer.name(&facts("/srv/app/run.py", "<module>"), &t);
    assert_eq!(n.name, s("__main__"));
}

#[test]
fn l7_unresolved_absolute_file_falls_back_with_reason() {
    let mut namer = LegacyNamer::new(LegacyResolver::new(&[], None));
    let n = namer.name(&facts("/", "<module>"), &MemTable::new());
    assert_eq!(n.name, None);
    assert_eq!(n.fallback, Some(FallbackReason::Unresolved));
    assert_eq!(n.label(true, "<module>"), "<module>");
}

#[test]
fn l7_filter_and_runtime_resolvers_keep_separate_caches() {
    let mut t = MemTable::new();
    t.set("first", file_module("first", "/x/m.py"));
    let mut filter = LegacyResolver::new(&[], None);
    let mut runtime = LegacyResolver::new(&[], None);
    assert_eq!(filter.resolve("/x/m.py", &t), s("first"));
    t.remove("first");
    t.set("second", file_module("second", "/x/m.py"));
    assert_eq!(runtime.resolve("/x/m.py", &t), s("second"));
    assert_eq!(filter.resolve("/x/m.py", &t), s("first"));
}

// ---------------------------------------------------------------- F4.3 filter module name

#[test]
fn f4_3_valid_relative_name_is_kept_but_the_resolver_still_runs() {
    let mut t = MemTable::new();
    t.set("other", file_module("other", "/home/ana/app/tool.py"));
    let mut r = LegacyResolver::new(&[], None);
    let name = legacy_filter_module_name(
        &mut r,
        Some("home/ana/app/tool.py"),
        "/home/ana/app/tool.py",
        &t,
    );
    assert_eq!(name, s("home.ana.app.tool"));
    assert_eq!(
        r.cached_name("/home/ana/app/tool.py"),
        Some("other"),
        "resolver ran"
    );
}

#[test]
fn f4_3_resolver_replaces_a_missing_or_invalid_first_name() {
    let mut t = MemTable::new();
    t.set("tool", file_module("tool", "/home/ana/my-app/tool.py"));
    let mut r = LegacyResolver::new(&[], None);
    let name = legacy_filter_module_name(
        &mut r,
        Some("home/ana/my-app/tool.py"),
        "/home/ana/my-app/tool.py",
        &t,
    );
    assert_eq!(name, s("tool"));
    let name = legacy_filter_module_name(&mut r, None, "/home/ana/my-app/tool.py", &t);
    assert_eq!(name, s("tool"));
    // Invalid first name and no answer: the invalid name stays.
    let name = legacy_filter_module_name(&mut r, Some("a-b/c.txt"), "<string>", &MemTable::new());
    assert_eq!(name, s("a-b.c.txt"));
}

#[test]
fn f4_3_main_replaces_only_a_first_name_without_dot() {
    let mut t = MemTable::new();
    t.set("__main__", file_module("__main__", "/w/tool.py"));
    let mut r = LegacyResolver::new(&[], None);
    assert_eq!(
        legacy_filter_module_name(&mut r, Some("tool.py"), "/w/tool.py", &t),
        s("__main__")
    );
    assert_eq!(
        legacy_filter_module_name(&mut r, Some("w/tool.py"), "/w/tool.py", &t),
        s("w.tool")
    );
    // A non-__main__ answer does not replace a valid dotless name.
    t.set("renamed", file_module("renamed", "/w/other.py"));
    assert_eq!(
        legacy_filter_module_name(&mut r, Some("other.py"), "/w/other.py", &t),
        s("other")
    );
}

/// L1.1 by its definition (split on `/`, drop empty and `.` segments, keep one leading `/`),
/// against `normalise` for every string of up to 6 characters over `/`, `.` and `a`: the
/// implementation returns already-normal paths without rebuilding them, and must agree.
#[test]
fn l1_1_normalise_agrees_with_its_definition_exhaustively() {
    fn by_definition(input: &str) -> Option<String> {
        if input.is_empty() {
            return None;
        }
        let absolute = input.starts_with('/');
        let segments: Vec<&str> = input
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect();
        if segments.is_empty() && !absolute {
            return None;
        }
        let joined = segments.join("/");
        Some(if absolute {
            format!("/{joined}")
        } else {
            joined
        })
        .map(|s| if s == "/" { String::new() } else { s })
    }
    let alphabet = ['/', '.', 'a'];
    let mut inputs = vec![String::new()];
    let mut checked = 0;
    for _ in 0..6 {
        let mut longer = Vec::new();
        for prefix in &inputs {
            for c in alphabet {
                longer.push(format!("{prefix}{c}"));
            }
        }
        for input in &longer {
            assert_eq!(normalise(input), by_definition(input), "input {input:?}");
            // Appending to a buffer that already holds text: the same answer after it,
            // and the buffer untouched when there is none.
            let mut out = String::from("x");
            let appended = normalise_into(input, &mut out);
            assert_eq!(
                appended.then(|| out[1..].to_string()),
                by_definition(input),
                "input {input:?}"
            );
            if !appended {
                assert_eq!(out, "x", "input {input:?}");
            }
            assert_eq!(
                normalised(input).map(|n| n.into_owned()),
                by_definition(input),
                "input {input:?}"
            );
            checked += 1;
        }
        inputs = longer;
    }
    assert_eq!(checked, 3 + 9 + 27 + 81 + 243 + 729);
}

/// L1.2's two paths (the usual shape and any other) against the rule as written: every path
/// of up to four segments drawn from a set with each kind of segment, joined by `/` or `//`,
/// with and without a leading and a trailing `/`.
#[test]
fn l1_2_relative_to_dotted_agrees_with_its_definition_exhaustively() {
    fn by_definition(relative: &str) -> Option<String> {
        let mut segments: Vec<&str> = relative.split('/').filter(|s| !s.is_empty()).collect();
        if let Some(last) = segments.pop() {
            match last.strip_suffix(".py") {
                Some("__init__") => {}
                Some(stem) => segments.push(stem),
                None => segments.push(last),
            }
        }
        (!segments.is_empty()).then(|| segments.join("."))
    }
    let pieces = [
        "a",
        "b_1",
        ".py",
        "m.py",
        "__init__.py",
        "x.pyc",
        "__init__",
        ".",
    ];
    let mut paths = vec![String::new()];
    let mut layer = vec![String::new()];
    for _ in 0..4 {
        let mut next = Vec::new();
        for prefix in &layer {
            for piece in pieces {
                for sep in ["/", "//"] {
                    if prefix.is_empty() {
                        next.push(piece.to_string());
                        break;
                    }
                    next.push(format!("{prefix}{sep}{piece}"));
                }
            }
        }
        paths.extend(next.iter().cloned());
        layer = next;
    }
    let mut checked = 0;
    for path in &paths {
        for variant in [
            path.clone(),
            format!("/{path}"),
            format!("{path}/"),
            format!("/{path}/"),
        ] {
            assert_eq!(
                relative_to_dotted(&variant),
                by_definition(&variant),
                "{variant:?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 40_000, "{checked}");
}
