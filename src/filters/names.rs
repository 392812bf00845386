//! How a module name reaches `pkg`/`obj` selectors. The filter engine never resolves names
//! itself: the naming engine hands them in. This module holds the small, pure rules that turn
//! an engine's answer into the name the filters see:
//!
//! - legacy engine: [`legacy_filter_module_name`] (spec F4.3);
//! - globals engine: [`globals_filter_module_name`] (spec N5).
//!
//! It also holds the path helpers of spec L1 that Part F relies on.

use std::path::Path;

// The spec's L1 helpers and name rules are shared with the naming engines; the filters use
// them under these names.
pub use crate::naming::paths::{
    normalise as normalize_posix, relative_to_dotted as relative_path_to_dotted,
};
pub use crate::naming::{is_synthetic_filename, is_valid_dotted_name};

/// Spec F4.3: the module name the **legacy** pipeline gives to `pkg`/`obj` selectors.
///
/// `relative_path` is the chain's relative path of the code object
/// ([`FilterChain::relative_path`](super::FilterChain::relative_path)); `resolver_answer` is
/// the legacy resolver's answer (L5) for the normalised `co_filename`, which d355f1a computed
/// for every code object, functions included.
///
/// The first name is the relative path converted with L1.2 (not validated). The resolver's
/// answer replaces it when there is no first name, when the first name is not a valid dotted
/// name, or when the answer is `__main__` and the first name has no `.`.
pub fn legacy_filter_module_name(
    relative_path: Option<&str>,
    resolver_answer: Option<&str>,
) -> Option<String> {
    let first = relative_path.and_then(relative_path_to_dotted);
    let answer = resolver_answer.filter(|a| !a.is_empty());
    match (first, answer) {
        (None, answer) => answer.map(str::to_string),
        (Some(first), Some(answer))
            if !is_valid_dotted_name(&first) || (answer == "__main__" && !first.contains('.')) =>
        {
            Some(answer.to_string())
        }
        (Some(first), _) => Some(first),
    }
}

/// Spec N5: the module name the **globals** engine gives to `pkg`/`obj` selectors.
///
/// 1. `dunder_name` (the `__name__` the tracer read from the frame globals), trimmed, when it
///    is a valid dotted name. Scripts are therefore `__main__`.
/// 2. Otherwise the project-relative name: `relative_path` (pass
///    [`FilterChain::relative_path`](super::FilterChain::relative_path)) converted with L1.2,
///    accepted only when it is a valid dotted name.
/// 3. Otherwise walk up from the file's directory while the directory holds an `__init__.py`,
///    prefixing each package directory to the module's stem (`__init__.py` names the package
///    itself). Accepted only when the result is a valid dotted name.
///
/// `absolute_path` is the normalised `co_filename` (L1.1). The walk reads the filesystem.
pub fn globals_filter_module_name(
    dunder_name: Option<&str>,
    relative_path: Option<&str>,
    absolute_path: &str,
) -> Option<String> {
    if let Some(name) = dunder_name.map(str::trim) {
        if is_valid_dotted_name(name) {
            return Some(name.to_string());
        }
    }
    if let Some(name) = relative_path.and_then(relative_path_to_dotted) {
        if is_valid_dotted_name(&name) {
            return Some(name);
        }
    }
    init_py_walk(absolute_path)
}

/// The `__init__.py` walk of N5 step 3.
fn init_py_walk(absolute_path: &str) -> Option<String> {
    if absolute_path.is_empty() || is_synthetic_filename(absolute_path) {
        return None;
    }
    let path = Path::new(absolute_path);
    let file_name = path.file_name()?.to_str()?;
    let stem = file_name.strip_suffix(".py").unwrap_or_else(|| {
        path.file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(file_name)
    });
    let mut parts: Vec<&str> = Vec::new();
    if stem != "__init__" {
        parts.push(stem);
    }
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d.as_os_str().is_empty() || !d.join("__init__.py").is_file() {
            break;
        }
        match d.file_name().and_then(|n| n.to_str()) {
            Some(name) => parts.push(name),
            None => break,
        }
        dir = d.parent();
    }
    if parts.is_empty() {
        return None;
    }
    parts.reverse();
    let name = parts.join(".");
    is_valid_dotted_name(&name).then_some(name)
}
