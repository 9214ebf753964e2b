"""Keep-style rules from configuration: fingerprint and deduplication rules, enrichment.

    validate(cfg) -> list[str]   every problem with the configured rules (correlation rules
                                 and maintenance windows too), one line each
                                 (the supervisor calls it before it spawns workers)
    load(cfg) -> Rules           the compiled rules (the pipeline calls it once, at worker
                                 start); raises RuleError

This module stays light: farm/config/rules.py imports farm.rules.dedup_rules, which imports it
first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # farm.config imports this package (its dedup rule parser) while it loads
    from farm.config import Config

# A rule's regex (extraction, mapping cell, CEL matches()) searches at most this many characters
# of a value: values are alert data, as big as the gateway's max_body, and Python's backtracking
# `re` takes time quadratic in the text, or worse, for many patterns.
SEARCH_CHARS = 65_536


def load(cfg: Config):
    """Compile every configured rule. Raises farm.rules.ruleset.RuleError listing problems."""
    from farm.rules.ruleset import Rules

    return Rules.from_config(cfg)


def validate(cfg: Config) -> list[str]:
    """Every problem with the configured dedup rules and rule files; empty when all is well."""
    from farm.correlation.rules import validate as validate_correlation
    from farm.maintenance.sources import validate as validate_maintenance
    from farm.rules.ruleset import RuleError

    try:
        load(cfg)
        problems = []
    except RuleError as exc:
        problems = list(exc.problems)
    return problems + validate_correlation(cfg) + validate_maintenance(cfg)
