//! The globals engine (ADR 0016, spec Part N).
//!
//! A `<module>` code object is named after the `__name__` its frame globals held when it
//! first started: a `str` (subclasses included) that is non-empty once trimmed, trimmed,
//! with no identifier validation (N1). Anything else leaves the label at `<module>`, with a
//! bounded fallback reason (N4).
//!
//! Function code objects (N6): this engine follows the ADR's reading — only `<module>`
//! code reads `__name__`. A function is labelled by its qualname and gets no module name
//! ([`Naming::not_applicable`]), so a module that reassigns `__name__` in its body does
//! not rename its functions.
//!
//! The engine never looks at `sys.modules`, `sys.path` or the filesystem (N2) and keeps no
//! state: the caller's per-code-object cache is the only cache.

use super::{CodeFacts, Engine, FallbackReason, GlobalsName, ModuleNamer, ModuleTable, Naming};

/// The `__name__` engine. Stateless.
#[derive(Debug, Default, Clone, Copy)]
pub struct GlobalsNamer;

impl GlobalsNamer {
    /// A new globals engine.
    pub fn new() -> Self {
        GlobalsNamer
    }

    /// The N1/N4 rule on its own: the name a `<module>` code object gets from its globals.
    pub fn name_from_globals(globals_name: &GlobalsName) -> Naming {
        match globals_name {
            GlobalsName::Str(raw) => {
                // `str::trim` removes Unicode White_Space, as the stage-2 code did.
                let trimmed = raw.trim();
                if trimmed.is_empty() {
                    Naming::fallback(FallbackReason::Empty)
                } else {
                    Naming::named(trimmed)
                }
            }
            GlobalsName::Missing => Naming::fallback(FallbackReason::Missing),
            GlobalsName::NotStr { .. } => Naming::fallback(FallbackReason::NotStr),
            GlobalsName::NoGlobals => Naming::fallback(FallbackReason::NoGlobals),
        }
    }
}

impl ModuleNamer for GlobalsNamer {
    fn engine(&self) -> Engine {
        Engine::Globals
    }

    fn name(&mut self, facts: &CodeFacts, _modules: &dyn ModuleTable) -> Naming {
        if !facts.is_module {
            return Naming::not_applicable();
        }
        Self::name_from_globals(&facts.globals_name)
    }
}
