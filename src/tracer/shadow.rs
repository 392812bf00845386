//! Shadow mode on the recorder side: the other naming engine runs as a guest on every new
//! code object, and `ct-shadow` compares, classifies, counts and logs.
//!
//! The guest's promise: whatever the shadow engine does — return an error, panic, or take
//! its time — the trace and the program are as they would be without `--shadow-compare`.
//! So the shadow engine runs after the primary's results are final, under `catch_unwind`,
//! its Python error indicator is cleared, nothing it computes is used for recording, and
//! its cost is metered against `--shadow-budget`.
//!
//! Which names are compared: for `<module>` code, each engine's module name (the one the
//! label is made from); for function code, the module name each engine gives the
//! filters (legacy F4.3, globals N5), since that is what decides `pkg:` and `obj:` rules.

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use ct_shadow::{
    fallback, EngineResult, FilterOutcome, Gate, Metrics, Observation, RuleRef, ShadowSession,
};
use pyo3::ffi as py;

use super::scope::Scoping;
use crate::filters::{Decision, Exec, FilterChain, ScopeContext};
use crate::naming::{
    CodeFacts, Engine, FallbackReason, GlobalsName, ModuleNamer, Naming, PySysModules,
};

/// Test-only fault injection into the shadow engine (`CT_RECORDER_TEST_SHADOW_FAULT`):
/// `error`, `panic` or `stall` (sleeps 20 ms per comparison). Used by the test suite to
/// prove the guest promise; never set in production.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Error,
    Panic,
    Stall,
}

impl Fault {
    pub fn from_env() -> Option<Fault> {
        match std::env::var("CT_RECORDER_TEST_SHADOW_FAULT")
            .ok()?
            .as_str()
        {
            "error" => Some(Fault::Error),
            "panic" => Some(Fault::Panic),
            "stall" => Some(Fault::Stall),
            _ => None,
        }
    }
}

pub struct ShadowSide {
    pub namer: Box<dyn ModuleNamer + Send>,
    pub session: ShadowSession,
    pub roots_digest: String,
    pub fault: Option<Fault>,
    logged_errors: HashSet<String>,
}

impl ShadowSide {
    pub fn new(
        namer: Box<dyn ModuleNamer + Send>,
        session: ShadowSession,
        roots_digest: String,
    ) -> Self {
        ShadowSide {
            namer,
            session,
            roots_digest,
            fault: Fault::from_env(),
            logged_errors: HashSet::new(),
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        self.session.metrics()
    }

    /// Runs the shadow engine on one code object and records the comparison.
    #[allow(clippy::too_many_arguments)]
    pub fn compare(
        &mut self,
        facts: &CodeFacts,
        primary: EngineResult,
        scoping: &mut Scoping,
        modules: &PySysModules,
        thread_id: u64,
    ) {
        if self.session.gate(&facts.filename) != Gate::Compare {
            return;
        }
        let engine = self.namer.engine();
        let started = Instant::now();
        let fault = self.fault;
        let namer = &mut self.namer;
        let outcome = catch_unwind(AssertUnwindSafe(
            || -> Result<(Option<String>, Option<FallbackReason>, ScopeContext, Decision), String> {
                match fault {
                    Some(Fault::Panic) => panic!("injected shadow-engine panic"),
                    Some(Fault::Error) => return Err("injected shadow-engine error".into()),
                    Some(Fault::Stall) => std::thread::sleep(std::time::Duration::from_millis(20)),
                    None => {}
                }
                let naming = namer.name(facts, modules);
                let (ctx, decision) = scoping.decide(engine, facts, modules);
                let (name, fallback) = compared_name(facts, naming, ctx.module_name.clone());
                Ok((name, fallback, ctx, decision))
            },
        ));
        // The guest never leaves a Python error behind.
        unsafe {
            if !py::PyErr_Occurred().is_null() {
                py::PyErr_Clear();
            }
        }
        let elapsed_ns = started.elapsed().as_nanos() as u64;
        let mut shadow = EngineResult::unnamed(shadow_engine(engine));
        shadow.elapsed_ns = elapsed_ns;
        match outcome {
            Ok(Ok((name, fallback, ctx, decision))) => {
                shadow.name = name;
                shadow.fallback = fallback.map(fallback_label);
                shadow.filter = Some(filter_outcome(&scoping.chain, &ctx, &decision));
            }
            Ok(Err(e)) => shadow.error = Some(e),
            Err(panic) => shadow.error = Some(format!("panic: {}", panic_message(&panic))),
        }
        if let Some(e) = &shadow.error {
            let kind = e.split(':').next().unwrap_or("").to_owned();
            if self.logged_errors.insert(kind) {
                tracing::warn!(
                    "shadow engine ({}) failed, comparison skipped for this code object: {e}",
                    engine.as_str()
                );
            }
        }
        let obs = Observation {
            filename: facts.filename.clone(),
            qualname: facts.qualname.clone(),
            is_module: facts.is_module,
            globals_name: shadow_globals_name(&facts.globals_name),
            spec_name: facts.spec_name.clone(),
            sys_path_roots: self.roots_digest.clone(),
            primary,
            shadow,
            thread_id,
            first_seen: self.session.elapsed().as_secs_f64(),
        };
        self.session.observe(&obs);
    }
}

/// The name compared for a code object (see the module docs) and the fallback, if any.
pub fn compared_name(
    facts: &CodeFacts,
    naming: Naming,
    filter_name: Option<String>,
) -> (Option<String>, Option<FallbackReason>) {
    if facts.is_module {
        (naming.name, naming.fallback)
    } else {
        (filter_name, None)
    }
}

pub fn shadow_engine(e: Engine) -> ct_shadow::Engine {
    match e {
        Engine::Globals => ct_shadow::Engine::Globals,
        Engine::Legacy => ct_shadow::Engine::Legacy,
    }
}

pub fn fallback_label(r: FallbackReason) -> &'static str {
    match r {
        FallbackReason::Missing => fallback::GLOBALS_MISSING,
        FallbackReason::NotStr => fallback::GLOBALS_NOT_STR,
        FallbackReason::Empty => fallback::GLOBALS_BLANK,
        FallbackReason::NoGlobals => fallback::NO_GLOBALS,
        FallbackReason::RelativeFilename => fallback::RELATIVE_FILENAME,
        FallbackReason::Unresolved | FallbackReason::SyntheticFilename => fallback::OTHER,
    }
}

pub fn shadow_globals_name(g: &GlobalsName) -> ct_shadow::GlobalsName {
    match g {
        GlobalsName::Str(s) => ct_shadow::GlobalsName::str(s.clone()),
        GlobalsName::Missing => ct_shadow::GlobalsName::Missing,
        GlobalsName::NotStr { type_name } => ct_shadow::GlobalsName::NotStr {
            type_name: type_name.clone(),
        },
        GlobalsName::NoGlobals => ct_shadow::GlobalsName::NoGlobals,
    }
}

/// The decision for the shadow artifacts, with the module name the filters judged (`ctx`).
pub fn filter_outcome(chain: &FilterChain, ctx: &ScopeContext, d: &Decision) -> FilterOutcome {
    FilterOutcome {
        module_name: ctx.module_name.clone(),
        exec: match d.exec() {
            Exec::Trace => ct_shadow::Exec::Trace,
            Exec::Skip => ct_shadow::Exec::Skip,
        },
        rule: d.matched_rule().map(|m| RuleRef {
            source: chain
                .sources()
                .get(m.source_index)
                .map(|s| {
                    s.path()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| s.name().to_owned())
                })
                .unwrap_or_default(),
            index: m.index_in_source,
            selector: m.selector.to_string(),
        }),
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".into())
}
