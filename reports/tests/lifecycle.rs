//! The lifecycle building blocks on their own: syntactic removal of legacy-gated code,
//! changelog and ADR edits, manifest edits that keep comments, and atomic change sets.

use ct_reports::lifecycle::delete::{
    remove_gated, without_doc_sections, without_feature, RustEdit,
};
use ct_reports::lifecycle::flip::{accept_adr, changelog_with};
use ct_reports::lifecycle::manifest::{edited_manifest, new_entry};
use ct_reports::lifecycle::ChangeSet;

fn edited(src: &str) -> String {
    match remove_gated(src) {
        Ok(RustEdit::Edited(s)) => s,
        other => panic!("expected an edit, got {other:?}"),
    }
}

#[test]
fn gated_items_statements_fields_and_arms_lose_their_exact_range() {
    let src = r#"// keep me
use std::fmt;

// The engine's registration (goes with it).
#[cfg(feature = "legacy-resolver")]
pub mod legacy;
#[cfg(not(feature = "legacy-resolver"))]
const LEGACY: bool = false;

struct S {
    a: u8,
    /// doc of b
    #[cfg(feature = "legacy-resolver")]
    b: u8,
    #[cfg_attr(not(feature = "legacy-resolver"), allow(dead_code))]
    c: u8,
}

fn f(x: u8) -> u8 {
    #[cfg(feature = "legacy-resolver")]
    {
        println!("legacy");
    }
    let y = match x {
        #[cfg(feature = "legacy-resolver")]
        0 => 1,
        _ => 2,
    };
    y
}
"#;
    let out = edited(src);
    assert!(
        out.starts_with("// keep me\nuse std::fmt;\n\nconst LEGACY: bool = false;\n"),
        "{out}"
    );
    assert!(!out.contains("registration"), "{out}");
    assert!(!out.contains("doc of b") && !out.contains("b: u8"), "{out}");
    assert!(out.contains("    #[allow(dead_code)]\n    c: u8,"), "{out}");
    assert!(
        !out.contains("println!(\"legacy\")") && !out.contains("0 => 1"),
        "{out}"
    );
    assert!(out.contains("_ => 2,"), "{out}");
    assert!(!out.contains("legacy-resolver"), "{out}");
    syn_ok(&out);
}

fn syn_ok(src: &str) {
    // The result must still be Rust: removing it again changes nothing.
    assert_eq!(remove_gated(src), Ok(RustEdit::Unchanged));
}

#[test]
fn a_file_gated_as_a_whole_is_deleted_and_unknown_forms_are_refused() {
    assert_eq!(
        remove_gated("#![cfg(feature = \"legacy-resolver\")]\nfn main() {}\n"),
        Ok(RustEdit::DeleteFile)
    );
    // A cfg! or an any(..) cannot be removed syntactically: the line is named.
    let err =
        remove_gated("fn f() -> bool {\n    cfg!(feature = \"legacy-resolver\")\n}\n").unwrap_err();
    assert_eq!(err, vec![2]);
    let err =
        remove_gated("#[cfg(any(test, feature = \"legacy-resolver\"))]\nfn g() {}\n").unwrap_err();
    assert_eq!(err, vec![1]);
    // Comments, docs and strings may name it.
    assert_eq!(
        remove_gated("/// built without `legacy-resolver`\nconst F: &str = \"legacy-resolver\";\n"),
        Ok(RustEdit::Unchanged)
    );
}

#[test]
fn cargo_feature_and_doc_sections() {
    let cargo = "[features]\ndefault = [\"legacy-resolver\"]\n# The legacy engine.\nlegacy-resolver = []\n# keep\nextension-module = []\n";
    let out = without_feature(cargo).unwrap();
    assert_eq!(
        out,
        "[features]\ndefault = []\n# keep\nextension-module = []\n"
    );
    let doc = "# T\n\nA\n\n<!-- legacy-resolver:begin -->\n## Legacy\n\ntext\n<!-- legacy-resolver:end -->\n\n## B\n";
    assert_eq!(
        without_doc_sections(doc).unwrap().unwrap(),
        "# T\n\nA\n\n## B\n"
    );
    assert!(without_doc_sections("<!-- legacy-resolver:begin -->\nx\n").is_err());
    assert_eq!(without_doc_sections("# nothing\n").unwrap(), None);
}

#[test]
fn changelog_entries_go_into_the_right_subsection() {
    let text =
        "# Changelog\n\n## [Unreleased]\n\n### Added\n- a\n\n### Fixed\n- f\n\n## [0.1.0]\n- old\n";
    let changed = changelog_with(text, "Changed", "- c").unwrap();
    assert_eq!(
        changed,
        "# Changelog\n\n## [Unreleased]\n\n### Added\n- a\n\n### Changed\n- c\n\n### Fixed\n- f\n\n## [0.1.0]\n- old\n"
    );
    let added = changelog_with(text, "Added", "- b").unwrap();
    assert!(
        added.contains("### Added\n- a\n- b\n\n### Fixed"),
        "{added}"
    );
    assert_eq!(changelog_with("# no unreleased\n", "Added", "- x"), None);
    let adr = "# ADR\n\nStatus: **Proposed**\n\nbody Proposed\n";
    let accepted = accept_adr(adr, "2026-12-01").unwrap();
    assert_eq!(
        accepted,
        "# ADR\n\nStatus: **Accepted** (2026-12-01; was Proposed)\n\nbody Proposed\n"
    );
    assert_eq!(accept_adr(&accepted, "2026-12-02"), None);
}

#[test]
fn manifest_edits_keep_comments_and_append_history() {
    let text = "[flag]\nname = \"module_name_from_globals\"\n# the default\ndefault = false\n\n[rollout]\n# phase comment\nphase = \"shadow\"\n";
    let entry = new_entry(
        "flip-default",
        "shadow",
        "globals-default",
        true,
        Some("why"),
        &["1-2".into()],
        &[],
    );
    let out = edited_manifest(text, "globals-default", true, &entry).unwrap();
    assert!(out.contains("# the default\ndefault = true\n"), "{out}");
    assert!(
        out.contains("# phase comment\nphase = \"globals-default\"\n"),
        "{out}"
    );
    let parsed: toml::Table = toml::from_str(&out).unwrap();
    let h = &parsed["history"].as_array().unwrap()[0];
    assert_eq!(h["reason"].as_str(), Some("why"));
    assert_eq!(h["run_ids"].as_array().unwrap()[0].as_str(), Some("1-2"));
    let again = edited_manifest(&out, "shadow", false, &entry).unwrap();
    let parsed: toml::Table = toml::from_str(&again).unwrap();
    assert_eq!(parsed["history"].as_array().unwrap().len(), 2);
}

#[test]
fn change_sets_apply_and_restore_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("a.txt"), "a\n").unwrap();
    std::fs::create_dir(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/b.txt"), "b\n").unwrap();
    let mut cs = ChangeSet::new(root);
    cs.write("a.txt", "A\n").unwrap();
    cs.delete("sub/b.txt").unwrap();
    cs.write("c.txt", "c\n").unwrap();
    assert!(
        cs.diff()
            .contains("--- a/sub/b.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-b\n"),
        "{}",
        cs.diff()
    );
    let applied = cs.apply().unwrap();
    assert_eq!(std::fs::read_to_string(root.join("a.txt")).unwrap(), "A\n");
    assert!(!root.join("sub/b.txt").exists());
    applied.restore().unwrap();
    assert_eq!(std::fs::read_to_string(root.join("a.txt")).unwrap(), "a\n");
    assert_eq!(
        std::fs::read_to_string(root.join("sub/b.txt")).unwrap(),
        "b\n"
    );
    assert!(!root.join("c.txt").exists());
    let names: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    cs.apply().unwrap().finish();
    assert!(!root.join("sub").exists(), "an emptied directory goes");
}
