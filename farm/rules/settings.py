"""Configuration keys of fingerprint, deduplication and enrichment rules."""

from __future__ import annotations

SETTINGS: tuple = ()
