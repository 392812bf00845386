//! The builtin filter (spec F7), embedded from `builtin.toml`. It is parsed like any other
//! source; its project root is the empty path and its name in errors and summaries is
//! `<builtin>`.

/// Name of the builtin source in errors, summaries and explanations.
pub const BUILTIN_NAME: &str = "<builtin>";

/// The builtin filter's text.
pub const BUILTIN_TOML: &str = include_str!("builtin.toml");
