//! Helpers shared by the `filters_*` integration tests.
#![allow(dead_code)]

use ct_recorder::filters::{FilterChain, ScopeContext};
use std::path::{Path, PathBuf};

/// `[meta]` and `[scope]` with the given defaults, then `body`.
pub fn filter_with(default_exec: &str, default_value: &str, body: &str) -> String {
    format!(
        "[meta]\nname = \"test\"\nversion = 1\n\n[scope]\ndefault_exec = \"{default_exec}\"\ndefault_value_action = \"{default_value}\"\n\n{body}"
    )
}

/// A filter with `trace`/`allow` defaults and `body`.
pub fn filter(body: &str) -> String {
    filter_with("trace", "allow", body)
}

/// One rule.
pub fn rule(selector: &str, exec: &str) -> String {
    format!("[[scope.rules]]\nselector = '{selector}'\nexec = \"{exec}\"\n\n")
}

/// Write `text` at `dir/rel`, creating directories.
pub fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

/// A chain made of inline sources `(project_root, text)`, with or without the builtin.
pub fn chain(builtin: bool, sources: &[(&str, &str)]) -> FilterChain {
    let mut b = FilterChain::builder();
    if builtin {
        b = b.builtin();
    }
    for (i, (root, text)) in sources.iter().enumerate() {
        b = b.inline(format!("inline{i}.toml"), *root, *text);
    }
    b.build().unwrap_or_else(|e| panic!("{e}"))
}

/// A context with the given module name.
pub fn ctx(chain: &FilterChain, file: &str, module: Option<&str>, qualname: &str) -> ScopeContext {
    chain.scope_context(file, module, qualname)
}
