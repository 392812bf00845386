//! The scope context of a code object (spec F4): the subjects that `pkg`, `file` and `obj`
//! selectors test. Computed once per code object, at its first event.

use super::chain::FilterChain;
use super::names::{is_synthetic_filename, normalize_posix};
use serde::Serialize;

/// What the selectors of a chain see for one code object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScopeContext {
    /// `co_filename` as the code object carries it.
    pub co_filename: String,
    /// F4.1: `co_filename` normalised with L1.1 (may be relative or synthetic; `None` when the
    /// filename is empty or only `.` segments).
    pub absolute_path: Option<String>,
    /// F4.2: see [`FilterChain::relative_path`].
    pub relative_path: Option<String>,
    /// F4.3 / N5: the module name handed in by the naming engine (`None`: no name; an empty
    /// string counts as no name).
    pub module_name: Option<String>,
    /// `co_qualname`.
    pub qualname: String,
    /// F4.4: module name, `.`, qualname; the module name alone for an empty qualname; the
    /// qualname alone without a module name; `None` when both are missing.
    pub object_name: Option<String>,
    /// F7: the filename, trimmed, starts with `<` and ends with `>`.
    pub synthetic: bool,
}

impl ScopeContext {
    /// Build a context from parts the caller already has (for example a relative path it
    /// computed with [`FilterChain::relative_path`] to derive the module name).
    pub fn from_parts(
        co_filename: &str,
        relative_path: Option<String>,
        module_name: Option<&str>,
        qualname: &str,
    ) -> ScopeContext {
        ScopeContext::from_paths(
            co_filename,
            normalize_posix(co_filename),
            relative_path,
            module_name,
            qualname,
        )
    }

    /// [`from_parts`](Self::from_parts) with the F4.1 absolute path also computed by the
    /// caller (`normalize_posix(co_filename)`), e.g. cached per file.
    pub fn from_paths(
        co_filename: &str,
        absolute_path: Option<String>,
        relative_path: Option<String>,
        module_name: Option<&str>,
        qualname: &str,
    ) -> ScopeContext {
        let module_name = module_name.filter(|m| !m.is_empty()).map(str::to_string);
        let object_name = match (&module_name, qualname.is_empty()) {
            (Some(m), false) => Some(format!("{m}.{qualname}")),
            (Some(m), true) => Some(m.clone()),
            (None, false) => Some(qualname.to_string()),
            (None, true) => None,
        };
        ScopeContext {
            co_filename: co_filename.to_string(),
            absolute_path,
            relative_path: relative_path.filter(|r| !r.is_empty()),
            module_name,
            qualname: qualname.to_string(),
            object_name,
            synthetic: is_synthetic_filename(co_filename),
        }
    }

    /// F5: the subject of a `file` selector: the relative path when there is one, otherwise
    /// the absolute path (never both).
    pub fn file_subject(&self) -> Option<&str> {
        self.relative_path
            .as_deref()
            .or(self.absolute_path.as_deref())
    }
}

impl FilterChain {
    /// Spec F4 for a code object, with the module name given by the naming engine: pass
    /// [`legacy_filter_module_name`](super::legacy_filter_module_name) under the legacy engine
    /// and [`globals_filter_module_name`](super::globals_filter_module_name) under the globals
    /// engine. The filter engine never derives a module name itself.
    pub fn scope_context(
        &self,
        co_filename: &str,
        module_name: Option<&str>,
        qualname: &str,
    ) -> ScopeContext {
        ScopeContext::from_parts(
            co_filename,
            self.relative_path(co_filename),
            module_name,
            qualname,
        )
    }
}
