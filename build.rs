//! Build script: turns `rollout.toml` (the rollout manifest) into constants.
//!
//! The manifest is validated here, so a bad value fails the build with a message naming the
//! key, instead of shipping a recorder whose default nobody chose. The flag's default and the
//! phase are written to `$OUT_DIR/rollout.rs`, which `src/policy.rs` includes: flipping the
//! default is a one-line data change in `rollout.toml`.
//!
//! `tests/policy_layers.rs` includes this file as a module to test [`parse_manifest`].

use std::path::PathBuf;

/// The only flag this build knows how to roll out.
pub const FLAG: &str = "module_name_from_globals";

/// The phases, in rollout order, with the flag default each one requires.
pub const PHASES: [(&str, &str, bool); 4] = [
    ("legacy", "Legacy", false),
    ("shadow", "Shadow", false),
    ("globals-default", "GlobalsDefault", true),
    ("legacy-deleted", "LegacyDeleted", true),
];

/// The readiness gates `ct-rollout` checks (validated here, used there).
#[derive(Debug, Clone, PartialEq)]
pub struct Gates {
    pub min_comparisons: u64,
    pub max_unexpected_divergence_rate: f64,
    pub max_filter_decision_changes: u64,
    pub min_runs: u64,
}

/// A validated rollout manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub flag_name: String,
    pub default: bool,
    /// The phase as written in the file (`shadow`, …).
    pub phase: &'static str,
    /// The name of the matching `policy::Phase` variant (`Shadow`, …).
    pub phase_variant: &'static str,
    pub gates: Gates,
}

fn table<'a>(root: &'a toml::Table, name: &str) -> Result<&'a toml::Table, String> {
    match root.get(name) {
        Some(toml::Value::Table(t)) => Ok(t),
        Some(other) => Err(format!(
            "[{name}] must be a table, found {}",
            other.type_str()
        )),
        None => Err(format!("missing table [{name}]")),
    }
}

fn only_keys(t: &toml::Table, name: &str, known: &[&str]) -> Result<(), String> {
    match t.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "unknown key `{k}` {} (known keys: {})",
            if name.is_empty() {
                "at the top level".to_string()
            } else {
                format!("in [{name}]")
            },
            known.join(", ")
        )),
        None => Ok(()),
    }
}

fn get<'a>(t: &'a toml::Table, section: &str, key: &str) -> Result<&'a toml::Value, String> {
    t.get(key)
        .ok_or_else(|| format!("missing key `{key}` in [{section}]"))
}

fn count(t: &toml::Table, section: &str, key: &str, min: i64) -> Result<u64, String> {
    match get(t, section, key)? {
        toml::Value::Integer(n) if *n >= min => Ok(*n as u64),
        other => Err(format!(
            "[{section}] {key} = {other} is invalid: expected an integer >= {min}"
        )),
    }
}

/// Parses and validates the manifest text. Errors name the table and key at fault.
pub fn parse_manifest(text: &str) -> Result<Manifest, String> {
    let root: toml::Table = text.parse().map_err(|e| format!("not valid TOML: {e}"))?;
    // `history` (the audit trail) and `lifecycle` (delete-legacy's check) are ct-rollout's;
    // the build only needs to know they are allowed.
    only_keys(
        &root,
        "",
        &["flag", "rollout", "gates", "history", "lifecycle"],
    )?;

    let flag = table(&root, "flag")?;
    only_keys(flag, "flag", &["name", "default"])?;
    let flag_name = match get(flag, "flag", "name")? {
        toml::Value::String(s) if s == FLAG => s.clone(),
        other => {
            return Err(format!(
                "[flag] name = {other} is invalid: this build only knows \"{FLAG}\""
            ))
        }
    };
    let default = match get(flag, "flag", "default")? {
        toml::Value::Boolean(b) => *b,
        other => {
            return Err(format!(
                "[flag] default = {other} is invalid: expected true or false"
            ))
        }
    };

    let rollout = table(&root, "rollout")?;
    only_keys(rollout, "rollout", &["phase"])?;
    let names: Vec<&str> = PHASES.iter().map(|p| p.0).collect();
    let (phase, phase_variant, required_default) = match get(rollout, "rollout", "phase")? {
        toml::Value::String(s) => PHASES.iter().find(|p| p.0 == s).copied(),
        _ => None,
    }
    .ok_or_else(|| {
        format!(
            "[rollout] phase = {} is invalid: expected one of {}",
            rollout["phase"],
            names.join(", ")
        )
    })?;
    if default != required_default {
        return Err(format!(
            "[flag] default = {default} contradicts [rollout] phase = \"{phase}\", which \
             requires default = {required_default} (the globals engine is the default from \
             phase globals-default on)"
        ));
    }

    let gates = table(&root, "gates")?;
    let known = [
        "min_comparisons",
        "max_unexpected_divergence_rate",
        "max_filter_decision_changes",
        "min_runs",
    ];
    only_keys(gates, "gates", &known)?;
    let rate = match get(gates, "gates", known[1])? {
        toml::Value::Float(f) if (0.0..=1.0).contains(f) => *f,
        toml::Value::Integer(n) if (0..=1).contains(n) => *n as f64,
        other => {
            return Err(format!(
                "[gates] {} = {other} is invalid: expected a number from 0 to 1",
                known[1]
            ))
        }
    };
    let gates = Gates {
        min_comparisons: count(gates, "gates", known[0], 0)?,
        max_unexpected_divergence_rate: rate,
        max_filter_decision_changes: count(gates, "gates", known[2], 0)?,
        min_runs: count(gates, "gates", known[3], 1)?,
    };

    Ok(Manifest {
        flag_name,
        default,
        phase,
        phase_variant,
        gates,
    })
}

/// The Rust source written to `$OUT_DIR/rollout.rs`.
pub fn generated_source(m: &Manifest) -> String {
    format!(
        "// Generated by build.rs from rollout.toml. Edit rollout.toml, not this file.\n\
         \n\
         /// `[flag] name` in rollout.toml.\n\
         pub const FLAG_NAME: &str = {name:?};\n\
         /// `[flag] default` in rollout.toml: the built-in value of `module_name_from_globals`.\n\
         pub const MODULE_NAME_FROM_GLOBALS_DEFAULT: bool = {default};\n\
         /// `[rollout] phase` in rollout.toml.\n\
         pub const PHASE: Phase = Phase::{variant};\n",
        name = m.flag_name,
        default = m.default,
        variant = m.phase_variant,
    )
}

#[allow(dead_code)] // unused when tests include this file as a module
fn fail(path: &std::path::Path, msg: &str) -> ! {
    eprintln!("error: {}: {msg}", path.display());
    std::process::exit(1);
}

#[allow(dead_code)] // unused when tests include this file as a module
/// The CPython versions this recorder supports (`(major, minor)`, inclusive). The tracer's
/// back ends are written against these versions' C APIs; extend here when a back end for a
/// new version lands.
pub const SUPPORTED_PYTHON: std::ops::RangeInclusive<(u8, u8)> = (3, 11)..=(3, 13);

/// Refuses an interpreter outside [`SUPPORTED_PYTHON`] (or not CPython) with a message that
/// says what to do, instead of a library that fails at import with an undefined symbol.
pub fn check_interpreter(implementation: &str, major: u8, minor: u8) -> Result<(), String> {
    let (lo, hi) = (SUPPORTED_PYTHON.start(), SUPPORTED_PYTHON.end());
    let supported = format!("CPython {}.{} to {}.{}", lo.0, lo.1, hi.0, hi.1);
    if implementation != "CPython" {
        return Err(format!(
            "ct-recorder supports {supported}; this build targets {implementation} \
             {major}.{minor}. Point PYO3_PYTHON at a supported CPython interpreter."
        ));
    }
    if !SUPPORTED_PYTHON.contains(&(major, minor)) {
        return Err(format!(
            "ct-recorder supports {supported}; this build targets Python {major}.{minor}. \
             Point PYO3_PYTHON (or maturin's -i) at a supported interpreter."
        ));
    }
    Ok(())
}

fn main() {
    let py = pyo3_build_config::get();
    if let Err(msg) = check_interpreter(
        &py.implementation.to_string(),
        py.version.major,
        py.version.minor,
    ) {
        eprintln!("error: {msg}");
        std::process::exit(1);
    }
    println!("cargo:rerun-if-changed=rollout.toml");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let path = dir.join("rollout.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| fail(&path, &e.to_string()));
    let manifest = parse_manifest(&text).unwrap_or_else(|e| fail(&path, &e));
    if manifest.phase == "legacy-deleted"
        && std::env::var_os("CARGO_FEATURE_LEGACY_RESOLVER").is_some()
    {
        println!(
            "cargo:warning=rollout.toml says phase legacy-deleted but the `legacy-resolver` \
             feature is still enabled"
        );
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("rollout.rs");
    std::fs::write(&out, generated_source(&manifest))
        .unwrap_or_else(|e| fail(&out, &e.to_string()));
}
