//! The policy's configuration layers, their precedence and provenance, and the rollout
//! manifest. Hermetic: environments are maps passed to the builder, projects are temp dirs.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use ct_recorder::policy::{
    find_pyproject, parse_env_bool, rollout, CliOverrides, Layer, Phase, Policy, PolicyBuilder,
    PolicyError,
};

#[allow(dead_code)]
#[path = "../build.rs"]
mod build_script;

const DEFAULT: bool = rollout::MODULE_NAME_FROM_GLOBALS_DEFAULT;
const MNFG: &str = "CODETRACER_MODULE_NAME_FROM_GLOBALS";
const SHADOW: &str = "CODETRACER_SHADOW_COMPARE";

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// A temp dir (canonical path) with `pyproject.toml` holding `content`.
fn project(content: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    fs::write(root.join("pyproject.toml"), content).unwrap();
    (dir, root)
}

fn project_error(content: &str) -> (PolicyError, PathBuf) {
    let (_dir, root) = project(content);
    let err = PolicyBuilder::new().project_config(&root).unwrap_err();
    (err, root.join("pyproject.toml"))
}

fn src(s: &str) -> Option<String> {
    Some(s.to_string())
}

fn rollout_manifest() -> toml::Table {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rollout.toml");
    fs::read_to_string(path).unwrap().parse().unwrap()
}

#[test]
fn built_in_default_is_what_rollout_toml_says() {
    let m = rollout_manifest();
    assert_eq!(m["flag"]["name"].as_str(), Some(rollout::FLAG_NAME));
    assert_eq!(m["flag"]["default"].as_bool(), Some(DEFAULT));
    assert_eq!(
        m["rollout"]["phase"].as_str(),
        Some(rollout::PHASE.as_str())
    );

    let p = Policy::built_in();
    assert_eq!(p.module_name_from_globals.value, DEFAULT);
    assert_eq!(p.module_name_from_globals.layer, Layer::BuiltIn);
    assert_eq!(p.module_name_from_globals.source, src("rollout.toml"));
    assert!(!p.shadow_compare.value);
    assert_eq!(p.shadow_compare.layer, Layer::BuiltIn);
    assert_eq!(p.shadow_compare.source, None);
}

#[test]
fn the_repository_manifest_passes_build_validation() {
    let text =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("rollout.toml")).unwrap();
    let m = build_script::parse_manifest(&text).unwrap();
    assert_eq!(m.default, DEFAULT);
    assert_eq!(m.phase, rollout::PHASE.as_str());
    assert!(m.gates.max_unexpected_divergence_rate <= 1.0);
    assert!(m.gates.min_runs >= 1);
}

#[test]
fn build_validation_names_the_key_at_fault() {
    let good = "[flag]\nname = \"module_name_from_globals\"\ndefault = false\n\
                [rollout]\nphase = \"shadow\"\n\
                [gates]\nmin_comparisons = 10\nmax_unexpected_divergence_rate = 0.01\n\
                max_filter_decision_changes = 0\nmin_runs = 1\n";
    build_script::parse_manifest(good).unwrap();
    let cases = [
        (
            "phase = \"shadow\"",
            "phase = \"shaddow\"",
            "[rollout] phase",
        ),
        ("default = false", "default = \"no\"", "[flag] default"),
        (
            "default = false",
            "default = true",
            "contradicts [rollout] phase",
        ),
        ("\"module_name_from_globals\"", "\"other\"", "[flag] name"),
        ("min_runs = 1", "min_runs = 0", "[gates] min_runs"),
        (
            "min_runs = 1",
            "min_run = 1",
            "unknown key `min_run` in [gates]",
        ),
        (
            "min_comparisons = 10",
            "min_comparisons = -1",
            "[gates] min_comparisons",
        ),
        ("= 0.01", "= 1.5", "[gates] max_unexpected_divergence_rate"),
        ("min_runs = 1\n", "", "missing key `min_runs` in [gates]"),
        (
            "[rollout]\nphase = \"shadow\"\n",
            "",
            "missing table [rollout]",
        ),
        ("[flag]", "[flags]", "unknown key `flags` at the top level"),
        ("default = false", "default = ", "not valid TOML"),
    ];
    for (from, to, expected) in cases {
        let bad = good.replacen(from, to, 1);
        assert_ne!(bad, good, "case {from:?} does not apply");
        let err = build_script::parse_manifest(&bad).unwrap_err();
        assert!(err.contains(expected), "{err:?} lacks {expected:?}");
    }
}

#[test]
fn every_phase_has_a_policy_phase_and_a_matching_default() {
    for (name, variant, default) in build_script::PHASES {
        let phase = Phase::ALL.iter().find(|p| p.as_str() == name).unwrap();
        assert_eq!(format!("{phase:?}"), variant);
        assert_eq!(
            default,
            matches!(phase, Phase::GlobalsDefault | Phase::LegacyDeleted)
        );
    }
}

#[test]
fn each_layer_overrides_the_one_below_and_records_its_source() {
    let (_dir, root) = project(&format!(
        "[project]\nname = \"x\"\n\n[tool.ct-recorder]\nmodule-name-from-globals = {}\nshadow-compare = true\n",
        !DEFAULT
    ));
    let pyproject = root.join("pyproject.toml").display().to_string();

    let p = PolicyBuilder::new().project_config(&root).unwrap().build();
    assert_eq!(p.module_name_from_globals.value, !DEFAULT);
    assert_eq!(p.module_name_from_globals.layer, Layer::ProjectConfig);
    assert_eq!(
        p.module_name_from_globals.source.as_deref(),
        Some(&*pyproject)
    );
    assert!(p.shadow_compare.value);
    assert_eq!(p.shadow_compare.layer, Layer::ProjectConfig);

    let env_value = if DEFAULT { "yes" } else { "no" };
    let b = PolicyBuilder::new()
        .project_config(&root)
        .unwrap()
        .env(env(&[(MNFG, env_value)]))
        .unwrap();
    let p = b.clone().build();
    assert_eq!(p.module_name_from_globals.value, DEFAULT);
    assert_eq!(p.module_name_from_globals.layer, Layer::Environment);
    assert_eq!(p.module_name_from_globals.source, src(MNFG));
    // A setting the environment leaves alone keeps its project value.
    assert_eq!(p.shadow_compare.layer, Layer::ProjectConfig);

    let b = b.cli(&CliOverrides {
        module_name_from_globals: Some(!DEFAULT),
        shadow_compare: Some(false),
        evidence_only: None,
    });
    let p = b.clone().build();
    assert_eq!(p.module_name_from_globals.value, !DEFAULT);
    assert_eq!(p.module_name_from_globals.layer, Layer::CommandLine);
    let flag = if DEFAULT {
        "--no-module-name-from-globals"
    } else {
        "--module-name-from-globals"
    };
    assert_eq!(p.module_name_from_globals.source, src(flag));
    assert!(!p.shadow_compare.value);
    assert_eq!(p.shadow_compare.source, src("--no-shadow-compare"));

    let p = b.python_api(Some(DEFAULT), None).build();
    assert_eq!(p.module_name_from_globals.value, DEFAULT);
    assert_eq!(p.module_name_from_globals.layer, Layer::PythonApi);
    assert_eq!(
        p.module_name_from_globals.source,
        src("ct_recorder.configure_policy()")
    );
    assert_eq!(p.shadow_compare.layer, Layer::CommandLine);

    let mut p = p;
    p.apply_python_api(None, Some(true));
    assert!(p.shadow_compare.value);
    assert_eq!(p.shadow_compare.layer, Layer::PythonApi);
}

#[test]
fn layer_order_does_not_depend_on_call_order() {
    let (_dir, root) = project("[tool.ct-recorder]\nshadow-compare = false\n");
    let p = PolicyBuilder::new()
        .python_api(None, Some(true))
        .cli(&CliOverrides {
            shadow_compare: Some(false),
            ..Default::default()
        })
        .env(env(&[(SHADOW, "0")]))
        .unwrap()
        .project_config(&root)
        .unwrap()
        .build();
    assert!(p.shadow_compare.value);
    assert_eq!(p.shadow_compare.layer, Layer::PythonApi);
}

#[test]
fn env_accepts_the_documented_booleans() {
    let cases = [
        ("1", true),
        ("0", false),
        ("true", true),
        ("FALSE", false),
        ("Yes", true),
        ("nO", false),
        ("on", true),
        ("OFF", false),
        ("  true\n", true),
        ("\t0 ", false),
    ];
    for (raw, expected) in cases {
        assert_eq!(parse_env_bool(MNFG, raw), Ok(Some(expected)), "{raw:?}");
        for var in [MNFG, SHADOW] {
            let p = PolicyBuilder::new()
                .env(env(&[(var, raw)]))
                .unwrap()
                .build();
            let s = if var == MNFG {
                &p.module_name_from_globals
            } else {
                &p.shadow_compare
            };
            assert_eq!(
                (s.value, s.layer),
                (expected, Layer::Environment),
                "{var}={raw:?}"
            );
            assert_eq!(s.source, src(var));
        }
    }
}

#[test]
fn empty_env_value_counts_as_unset() {
    for raw in ["", "   ", "\t\n"] {
        assert_eq!(parse_env_bool(MNFG, raw), Ok(None));
        let p = PolicyBuilder::new()
            .env(env(&[(MNFG, raw), (SHADOW, raw)]))
            .unwrap()
            .build();
        assert_eq!(p, Policy::built_in());
    }
}

#[test]
fn env_rejects_anything_else_naming_variable_value_and_accepted_values() {
    for raw in ["2", "maybe", "truee", "y", "n", "-1", "enabled", "t rue"] {
        for var in [MNFG, SHADOW] {
            let err = PolicyBuilder::new().env(env(&[(var, raw)])).unwrap_err();
            assert_eq!(
                err,
                PolicyError::Env {
                    var: var.into(),
                    value: raw.into()
                }
            );
            let msg = err.to_string();
            assert!(msg.contains(var), "{msg}");
            assert!(msg.contains(&format!("{raw:?}")), "{msg}");
            assert!(msg.contains("1, 0, true, false, yes, no, on, off"), "{msg}");
        }
    }
    assert_eq!(PolicyError::EXIT_STATUS, 2);
}

#[test]
fn malformed_pyproject_is_an_error_with_line_and_column() {
    let (err, path) =
        project_error("[project]\nname = \"x\"\n\n[tool.ct-recorder]\nshadow-compare = tru\n");
    let PolicyError::ProjectConfig {
        path: p,
        line,
        column,
        message,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(p, &path);
    assert_eq!(*line, Some(5));
    assert_eq!(*column, Some(18));
    assert!(message.contains("invalid TOML"), "{message}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}:5:18: ", path.display())),
        "{err}"
    );
}

#[test]
fn unknown_key_is_an_error_at_the_key() {
    let (err, path) = project_error(
        "[tool.ct-recorder]\nshadow-compare = true\n  module_name_from_globals = true\n",
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{}:3:3: ", path.display())),
        "{msg}"
    );
    assert!(
        msg.contains("unknown key `module_name_from_globals`"),
        "{msg}"
    );
    assert!(
        msg.contains("module-name-from-globals, shadow-compare"),
        "{msg}"
    );
}

#[test]
fn wrong_type_is_an_error_at_the_value() {
    for (value, type_name) in [("\"yes\"", "string"), ("1", "integer"), ("[true]", "array")] {
        let (err, path) = project_error(&format!(
            "[tool.ct-recorder]\nmodule-name-from-globals = {value}\n"
        ));
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("{}:2:28: ", path.display())),
            "{msg}"
        );
        assert!(msg.contains("must be true or false"), "{msg}");
        assert!(msg.contains(type_name), "{msg}");
    }
    let (err, _) = project_error("[tool]\nct-recorder = true\n");
    assert!(err.to_string().contains("must be a table"), "{err}");
}

#[test]
fn inline_tables_and_dotted_keys_are_read_too() {
    let (_dir, root) = project("tool.ct-recorder.shadow-compare = true\n");
    let p = PolicyBuilder::new().project_config(&root).unwrap().build();
    assert_eq!(p.shadow_compare.layer, Layer::ProjectConfig);
    let (_dir, root) = project("tool = { ct-recorder = { shadow-compare = true } }\n");
    let p = PolicyBuilder::new().project_config(&root).unwrap().build();
    assert!(p.shadow_compare.value);
}

#[test]
fn pyproject_is_found_walking_up_from_the_program_directory() {
    let (_dir, root) = project("[tool.ct-recorder]\nshadow-compare = true\n");
    let deep = root.join("src").join("pkg").join("sub");
    fs::create_dir_all(&deep).unwrap();
    assert_eq!(find_pyproject(&deep), Some(root.join("pyproject.toml")));
    // `..` is resolved before walking up.
    let dotted = deep.join("..").join("..");
    assert_eq!(find_pyproject(&dotted), Some(root.join("pyproject.toml")));

    let p = PolicyBuilder::new().project_config(&deep).unwrap().build();
    assert!(p.shadow_compare.value);
    assert_eq!(
        p.shadow_compare.source,
        Some(root.join("pyproject.toml").display().to_string())
    );
}

#[test]
fn the_nearest_pyproject_without_our_table_means_no_project_layer() {
    let (_dir, root) = project("[tool.ct-recorder]\nshadow-compare = true\n");
    let inner = root.join("inner");
    fs::create_dir_all(inner.join("app")).unwrap();
    fs::write(
        inner.join("pyproject.toml"),
        "[project]\nname = \"inner\"\n[tool.other]\nshadow-compare = 1\n",
    )
    .unwrap();
    assert_eq!(
        find_pyproject(&inner.join("app")),
        Some(inner.join("pyproject.toml"))
    );
    let p = PolicyBuilder::new()
        .project_config(&inner.join("app"))
        .unwrap()
        .build();
    assert_eq!(p, Policy::built_in());

    // An empty table sets nothing either.
    fs::write(inner.join("pyproject.toml"), "[tool.ct-recorder]\n").unwrap();
    let p = PolicyBuilder::new().project_config(&inner).unwrap().build();
    assert_eq!(p, Policy::built_in());
}

#[test]
fn no_pyproject_means_no_project_layer() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    if let Some(found) = find_pyproject(&root) {
        // Only a pyproject.toml above the temp dir could be found; it is not ours.
        assert!(!found.starts_with(&root));
        return;
    }
    let p = PolicyBuilder::new()
        .project_config(&root)
        .unwrap()
        .env(no_env)
        .unwrap()
        .build();
    assert_eq!(p, Policy::built_in());
}

#[test]
fn unreadable_pyproject_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pyproject.toml");
    fs::create_dir(&path).unwrap(); // a directory: found only by project_file
    let err = PolicyBuilder::new().project_file(&path).unwrap_err();
    assert!(matches!(err, PolicyError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));
}

#[test]
fn json_records_the_engine_and_the_layer_that_chose_it() {
    let p = PolicyBuilder::new()
        .env(env(&[(MNFG, "on"), (SHADOW, "1")]))
        .unwrap()
        .build();
    let j = p.to_json();
    assert_eq!(j["engine"]["primary"], "globals");
    assert_eq!(j["engine"]["chosen_by"], "env");
    assert_eq!(j["engine"]["source"], MNFG);
    assert_eq!(j["engine"]["shadow"], "legacy");
    assert_eq!(j["rollout"]["phase"], rollout::PHASE.as_str());
    assert_eq!(j["rollout"]["default"], DEFAULT);
    assert_eq!(j["settings"]["module_name_from_globals"]["value"], true);
    assert_eq!(j["settings"]["module_name_from_globals"]["layer"], "env");
    assert_eq!(j["settings"]["shadow_compare"]["source"], SHADOW);

    let j = Policy::built_in().to_json();
    assert_eq!(j["engine"]["chosen_by"], "built-in");
    assert_eq!(j["engine"]["shadow"], serde_json::Value::Null);
    assert_eq!(
        j["settings"]["shadow_compare"]["source"],
        serde_json::Value::Null
    );
}

#[test]
fn print_policy_table_shows_value_layer_and_source() {
    let p = PolicyBuilder::new()
        .cli(&CliOverrides {
            shadow_compare: Some(true),
            ..Default::default()
        })
        .build();
    let t = p.render_table();
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["setting", "value", "layer", "source"]
    );
    let row = |name: &str| -> Vec<&str> {
        lines
            .iter()
            .find(|l| l.starts_with(name))
            .unwrap()
            .split_whitespace()
            .collect()
    };
    assert_eq!(
        row("module_name_from_globals"),
        [
            "module_name_from_globals",
            &DEFAULT.to_string(),
            "built-in",
            "rollout.toml"
        ]
    );
    assert_eq!(
        row("shadow_compare"),
        ["shadow_compare", "true", "cli", "--shadow-compare"]
    );
    assert!(t.contains("rollout phase:"), "{t}");
}

#[test]
fn evidence_only_is_layered_like_the_others_and_needs_shadow_compare() {
    let (_dir, root) = project("[tool.ct-recorder]\nevidence-only = true\n");
    let p = PolicyBuilder::new()
        .project_config(&root)
        .unwrap()
        .env(no_env)
        .unwrap()
        .build();
    assert!(p.evidence_only.value);
    assert_eq!(p.evidence_only.layer, Layer::ProjectConfig);
    // Alone it is refused, naming where each value came from.
    let err = p.check().unwrap_err();
    assert!(err.contains("needs --shadow-compare"), "{err}");
    assert!(
        err.contains("project-config") && err.contains("built-in"),
        "{err}"
    );
    // The environment adds shadow compare: a valid evidence-only policy.
    let b = PolicyBuilder::new()
        .project_config(&root)
        .unwrap()
        .env(env(&[(SHADOW, "1")]))
        .unwrap();
    let p = b.clone().build();
    assert!(p.check().is_ok());
    assert_eq!(p.shadow_compare.layer, Layer::Environment);
    // --no-evidence-only wins over the project.
    let p = b
        .clone()
        .cli(&CliOverrides {
            evidence_only: Some(false),
            ..Default::default()
        })
        .build();
    assert!(!p.evidence_only.value);
    assert_eq!(
        p.evidence_only.source.as_deref(),
        Some("--no-evidence-only")
    );
    // The environment variable, and the Python API above everything.
    let p = PolicyBuilder::new()
        .env(env(&[("CODETRACER_EVIDENCE_ONLY", "on"), (SHADOW, "on")]))
        .unwrap()
        .build();
    assert!(p.evidence_only.value && p.check().is_ok());
    let mut p = p;
    p.apply_python_api_values(&ct_recorder::policy::PythonApiValues {
        evidence_only: Some(false),
        ..Default::default()
    });
    assert!(!p.evidence_only.value);
    assert_eq!(p.evidence_only.layer, Layer::PythonApi);
    // A value that is not a boolean is an error naming the variable.
    let e = PolicyBuilder::new()
        .env(env(&[("CODETRACER_EVIDENCE_ONLY", "maybe")]))
        .unwrap_err();
    assert!(e.to_string().contains("CODETRACER_EVIDENCE_ONLY"), "{e}");
}
