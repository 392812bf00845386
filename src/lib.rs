//! ct-recorder: a Python execution recorder that writes CodeTracer traces.
//!
//! The crate is both the Python extension module `ct_recorder._native` (built by maturin
//! with the `extension-module` feature) and an ordinary Rust library, so the parts that do
//! not need a running interpreter (trace writing, naming rules, filters) are tested and
//! benchmarked from Rust directly.
//!
//! Layout:
//! - [`writer`]: the CodeTracer trace format, streamed by a writer thread;
//! - [`naming`]: module-naming engines (`globals`, and `legacy` behind the
//!   `legacy-resolver` feature);
//! - [`filters`]: trace filter files and their evaluation;
//! - `tracer`: the C-level trace hook (the hot path) and its per-code-object cache;
//! - `cli`: the `ct-record` command line (clap), glue to the Python launcher.

pub mod filters;
pub mod naming;
pub mod writer;
