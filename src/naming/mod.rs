//! Module-naming engines. See docs/module-naming.md.
