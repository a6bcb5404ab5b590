"""Synthetic multi-workspace corpora: spec (TOML) → generated files (cached) → reader for loader and study."""
