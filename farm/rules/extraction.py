"""Extraction rules (docs/keep-compatibility.md#extraction-rules): a regex with named groups over
one rendered attribute (its first SEARCH_CHARS characters); on a match the groups become fields of
the event.

Pre rules run on the raw provider event before it is normalized (so they shape the fingerprint
and the dedup hash); post rules run on each alert that is not a full duplicate, after the dedup
decision. Rules of one kind run in descending priority, every one of them, each seeing what the
earlier ones added.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from farm.rules import SEARCH_CHARS
from farm.rules.template import Template


@dataclass(frozen=True)
class ExtractionRule:
    name: str
    priority: int
    pre: bool
    attribute: Template
    regex: re.Pattern
    condition: Callable[[dict], bool] | None
    tenants: frozenset[str] | None  # None: every tenant

    def apply(self, doc: dict) -> dict | None:
        """The groups to merge into `doc` (group `source` never), or None if the rule does not
        apply. Groups that did not take part are None, as in Keep."""
        value = self.attribute.render(doc)
        if not value:
            return None
        if self.condition is not None and not self.condition(doc):
            return None
        found = self.regex.search(value[:SEARCH_CHARS])
        if found is None:
            return None
        groups = found.groupdict()
        groups.pop("source", None)
        return groups


def run(rules: tuple[ExtractionRule, ...], doc: dict, protected: frozenset[str]) -> list[str]:
    """Apply every rule to `doc` in place; returns the names of the fields set. Fields in
    `protected` (farm's identity and bookkeeping of an alert) are never set."""
    changed: list[str] = []
    for rule in rules:
        groups = rule.apply(doc)
        if groups:
            for key, value in groups.items():
                if key not in protected:
                    doc[key] = value
                    changed.append(key)
    return changed
