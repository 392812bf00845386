//! Real run directories, made the way the recorder makes them: a `ShadowSession`, one
//! `observe` per compared code object, `finish` at the end.

#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ct_shadow::*;

/// One code object as both engines see it, before roles (primary/shadow) are assigned.
#[derive(Clone, Debug)]
pub struct Case {
    pub filename: String,
    pub qualname: String,
    pub is_module: bool,
    pub globals_name: GlobalsName,
    pub spec_name: Option<String>,
    pub globals: EngineResult,
    pub legacy: EngineResult,
}

impl Case {
    fn module(file: &str, dunder: &str, g: Option<&str>, l: Option<&str>) -> Case {
        let mut globals = EngineResult::unnamed(Engine::Globals);
        globals.name = g.map(Into::into);
        globals.elapsed_ns = 800;
        let mut legacy = EngineResult::unnamed(Engine::Legacy);
        legacy.name = l.map(Into::into);
        legacy.elapsed_ns = 90_000;
        Case {
            filename: file.into(),
            qualname: "<module>".into(),
            is_module: true,
            globals_name: GlobalsName::str(dunder),
            spec_name: Some(dunder.into()),
            globals,
            legacy,
        }
    }

    pub fn with_qualname(mut self, q: &str) -> Case {
        self.qualname = q.into();
        self.is_module = false;
        self
    }

    pub fn observation(&self, primary: Engine, roots: &str) -> Observation {
        let (p, s) = match primary {
            Engine::Globals => (self.globals.clone(), self.legacy.clone()),
            Engine::Legacy => (self.legacy.clone(), self.globals.clone()),
        };
        Observation {
            filename: self.filename.clone(),
            qualname: self.qualname.clone(),
            is_module: self.is_module,
            globals_name: self.globals_name.clone(),
            spec_name: self.spec_name.clone(),
            sys_path_roots: roots.into(),
            primary: p,
            shadow: s,
            thread_id: 1,
            first_seen: 0.0,
        }
    }
}

/// Both engines agree: a comparison, no divergence.
pub fn agree(i: usize) -> Case {
    let n = format!("mypkg.ok_{i}");
    Case::module(&format!("/srv/app/mypkg/ok_{i}.py"), &n, Some(&n), Some(&n))
}

/// src layout: expected (`root_ambiguity`).
pub fn root_ambiguity(i: usize) -> Case {
    let n = format!("mypkg.mod_{i}");
    let mut c = Case::module(
        &format!("/srv/app/src/mypkg/mod_{i}.py"),
        &n,
        Some(&n),
        Some(&format!("src.{n}")),
    );
    c.legacy.fallback = Some(fallback::PATH_CANDIDATE);
    c
}

/// The globals engine contradicts `__name__` on a module body: unexpected (`other`).
pub fn other(file: &str) -> Case {
    Case::module(file, "pkg.broken", None, Some("pkg.broken"))
}

/// The legacy engine fails: unexpected (`shadow_error` when legacy is the shadow).
pub fn legacy_error(file: &str) -> Case {
    let mut c = Case::module(file, "pkg.mod", Some("pkg.mod"), None);
    c.legacy.error = Some("sys.modules entry raised on attribute access".into());
    c
}

pub fn rule(source: &str, index: usize, selector: &str) -> RuleRef {
    RuleRef {
        source: source.into(),
        index,
        selector: selector.into(),
    }
}

/// A `filter_decision_changed` divergence: legacy `src.mypkg.x` falls to the chain default
/// (`from`), globals `mypkg.x` is decided by `globals_rule` (the other decision). Expected:
/// its cause is `root_ambiguity`.
pub fn filter_change(i: usize, from: Exec, globals_rule: RuleRef) -> Case {
    let mut c = root_ambiguity(i);
    let to = if from == Exec::Trace {
        Exec::Skip
    } else {
        Exec::Trace
    };
    c.legacy.filter = Some(FilterOutcome {
        module_name: c.legacy.name.clone(),
        exec: from,
        rule: None,
    });
    c.globals.filter = Some(FilterOutcome {
        module_name: c.globals.name.clone(),
        exec: to,
        rule: Some(globals_rule),
    });
    c
}

/// Records one shadow run in `dir`, as the recorder would, and returns its summary.
pub fn record_run(dir: &Path, run_id: &str, primary: Engine, cases: &[Case]) -> Summary {
    let metrics = Arc::new(Metrics::new(&RecorderInfo {
        version: "0.1.0".into(),
        primary,
        shadow: Some(primary.other()),
    }));
    let session = ShadowSession::start(ShadowConfig::new(dir), metrics.clone()).unwrap();
    let roots = session.register_roots(&["/srv/app", "/srv/app/src"]);
    for case in cases {
        let obs = case.observation(primary, &roots);
        metrics.observe_resolution(&obs.primary);
        assert_eq!(session.gate(&obs.filename), Gate::Compare);
        session.observe(&obs);
    }
    session
        .finish(&RunMeta {
            run_id: run_id.into(),
            command: vec!["ct-record".into(), "app.py".into()],
            started_unix_seconds: 1_700_000_000.0,
            python_version: Some("3.12.1".into()),
            exit_code: Some(0),
            entry: Some(Entry::new(false, "app.py")),
            trace_cut: None,
            filter_chain: Vec::new(),
            ..RunMeta::default()
        })
        .unwrap()
}

/// A temporary directory holding run directories.
pub struct Runs {
    pub root: tempfile::TempDir,
}

impl Runs {
    pub fn new() -> Runs {
        Runs {
            root: tempfile::tempdir().unwrap(),
        }
    }

    /// Records a run in a fresh sub-directory named `run_id` and returns its path.
    pub fn record(&self, run_id: &str, primary: Engine, cases: &[Case]) -> PathBuf {
        let dir = self.root.path().join(run_id);
        record_run(&dir, run_id, primary, cases);
        dir
    }
}

pub fn log_path(run: &Path) -> PathBuf {
    run.join("shadow").join("divergences.ndjson")
}

pub fn summary_path(run: &Path) -> PathBuf {
    run.join("shadow").join("summary.json")
}
