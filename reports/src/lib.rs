//! Rollout reports (see docs/rollout.md).
