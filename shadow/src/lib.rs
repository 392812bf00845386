//! Shadow comparison (see docs/shadow-mode.md).
