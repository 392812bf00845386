//! Trace filters. See docs/trace-filters.md.
