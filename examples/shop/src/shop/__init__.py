"""A tiny shop: the bundled example the demo records."""

__all__ = ["pricing", "inventory"]
