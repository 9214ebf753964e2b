"""Configuration keys of fingerprint, deduplication and enrichment rules.

Imports nothing but farm.setting at import time (farm/config.py imports this while it loads);
the checks import what they need when they run. Rule *files* are read and compiled by
`farm.rules.validate(cfg)` (supervisor, before workers start) and by the pipeline (worker start).
"""

from __future__ import annotations

from farm.setting import Setting


def _dedup_rules(value: object) -> str | None:
    from farm.rules.dedup_rules import check_rules

    return check_rules(value)


def _files(value: list[str]) -> str | None:
    for path in value:
        if not path.strip():
            return "must list rule files (TOML), not empty strings"
        if not path.endswith(".toml"):
            return (f"entry {path!r} must be a .toml rule file (a CSV mapping table is named "
                    f"by the `csv` key of a [[mapping]] rule inside one)")
    return None


SETTINGS: tuple = (
    # [dedup] (ttl_seconds and ignore_fields are core keys, farm/config.py)
    Setting("dedup", "rules", [],
            "Keep's custom deduplication rules, as [[dedup.rules]] tables with keys: provider "
            "(required: prometheus, grafana, datadog, zabbix or keep), tenant and provider_id "
            "(optional; absent means any), name, fingerprint_fields (dotted paths; absent or "
            "empty keeps the provider's fingerprint), ignore_fields (dotted paths left out of "
            "the content hash; lastReceived is always left out) and full_deduplication "
            "(default true; false means Keep's partial rule, which ignores only lastReceived). "
            "The most specific rule for a batch's tenant, provider and provider_id applies; "
            "without one, [dedup] ignore_fields applies.",
            kind=object, check=_dedup_rules),
    # [enrichment]
    Setting("enrichment", "enabled", True,
            "Run extraction and mapping rules (Keep's KEEP_ENRICHMENT_DISABLED, inverted).",
            kind=bool),
    Setting("enrichment", "files", [],
            "Rule files (TOML with [[extraction]] and [[mapping]] tables; see "
            "configs/enrichment/example.toml). Relative paths are relative to the folder of "
            "this config file. Read and compiled once when workers start; a bad file stops "
            "start-up.", kind=list, check=_files),
)
