"""Configuration keys of the ingest gateway ([ingest] and its tables)."""

from __future__ import annotations

SETTINGS: tuple = ()
