//! Rollout reports (see docs/rollout.md).

mod error;
mod load;

pub use error::ReportError;
pub use load::{load_run, LogState, RunReport};
