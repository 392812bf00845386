//! Shadow comparison of module-naming engines (crate docs are completed below).

pub mod compare;
pub mod metrics;
pub mod model;
pub mod push;
pub mod sampling;
pub mod server;
pub mod taxonomy;

pub use compare::{compare, third_opinion, Divergence, EngineRecord, OpinionSource, ThirdOpinion};
pub use metrics::{Metrics, RecorderInfo};
pub use model::{
    fallback, is_synthetic_filename, Engine, EngineResult, Exec, FilterOutcome, GlobalsName,
    Observation, RuleRef,
};
pub use sampling::{fnv1a64, Budget, BudgetState, RateError, Sampler, DEFAULT_BUDGET_FLOOR};
pub use server::{MetricsServer, ServerConfig, ServerError};
pub use taxonomy::{DivergenceKind, KindInfo, Severity};
