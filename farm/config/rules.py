"""The sections of Keep-style rules: [dedup] (the content hash and custom deduplication rules)
and [enrichment] (extraction and mapping rule files). The rule files themselves are read and
compiled by farm/rules/ (`farm.rules.validate(cfg)` before workers start, the pipeline at
worker start)."""

from __future__ import annotations

from farm.config.setting import key, parsed_by, section
from farm.rules.dedup_rules import parse_rules

_dedup_rules = parsed_by(parse_rules)


def _files(value: list[str]) -> str | None:
    for path in value:
        if not path.strip():
            return "must list rule files (TOML), not empty strings"
        if not path.endswith(".toml"):
            return (f"entry {path!r} must be a .toml rule file (a CSV mapping table is named "
                    f"by the `csv` key of a [[mapping]] rule inside one)")
    return None


@section("dedup")
class DedupSettings:
    ttl_seconds: int = key(7 * 86_400,
            "How long a fingerprint's last content hash is remembered.",
            minimum=60, maximum=366 * 86_400)
    ignore_fields: list[str] = key(["lastReceived"],
            "Fields left out of the content hash (Keep's ignore_fields; dotted paths reach into "
            "maps) for alerts no [[dedup.rules]] entry matches. lastReceived is always left out.")
    rules: list[dict] = key([],
            "Keep's custom deduplication rules, as [[dedup.rules]] tables with keys: provider "
            "(required: prometheus, grafana, datadog, zabbix or keep), tenant and provider_id "
            "(optional; absent means any), name, fingerprint_fields (dotted paths; absent or "
            "empty keeps the provider's fingerprint), ignore_fields (dotted paths left out of the "
            "content hash; lastReceived is always left out) and full_deduplication (default true; "
            "false means Keep's partial rule, which ignores only lastReceived). The most specific "
            "rule for a batch's tenant, provider and provider_id applies; without one, [dedup] "
            "ignore_fields applies.",
            check=_dedup_rules)


@section("enrichment")
class EnrichmentSettings:
    enabled: bool = key(True,
            "Run extraction and mapping rules (Keep's KEEP_ENRICHMENT_DISABLED, inverted).")
    files: list[str] = key([],
            "Rule files (TOML with [[extraction]] and [[mapping]] tables; see "
            "configs/enrichment/example.toml). Relative paths are relative to the folder of this "
            "config file. Compiled when workers start (a bad file stops start-up) and again "
            "within reload_seconds of a change to one of them or to a CSV file beside one; a "
            "changed file with problems is reported and the rules in force stay.",
            check=_files)
    reload_seconds: int = key(5,
            "How often workers look whether an enrichment rule file changed.",
            minimum=1, maximum=3600)
