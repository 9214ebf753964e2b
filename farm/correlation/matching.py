"""Which correlation rules an alert matches, and the group keys and name values it brings
(docs/keep-compatibility.md#correlation). Pure CPU work, run by the worker per alert."""

from __future__ import annotations

from collections.abc import Callable

from farm.correlation.rules import CorrelationRule
from farm.rules.condition import field_terms, field_tests

NONE_GROUP = "none"


def _walk(doc: object, path: tuple[str, ...]) -> object:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _text(value: object) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return value if isinstance(value, str) else str(value)


def group_keys(rule: CorrelationRule, alert: dict) -> list[str]:
    """Keep's rule fingerprint(s): the grouping values comma-joined ("none" when there are no
    criteria or one is missing); a multi-level rule gives one key per distinct value of
    `multi_level_property_name` in the maps under its first criterion (none: no incident)."""
    if not rule.grouping:
        return [NONE_GROUP]
    if rule.multi_level:
        outer = _walk(alert, rule.grouping[0])
        if not isinstance(outer, dict):
            return []
        values = {_text(inner[rule.multi_level_property]) for inner in outer.values()
                  if isinstance(inner, dict) and inner.get(rule.multi_level_property)
                  is not None}
        return sorted(values)
    parts = []
    for path in rule.grouping:
        value = _walk(alert, path)
        if value is None:
            return [NONE_GROUP]
        parts.append(_text(value))
    return [",".join(parts)]


def name_values(rule: CorrelationRule, alert: dict) -> list[str]:
    """The value of each `{{ path }}` of the name template ("N/A" when missing)."""
    out = []
    for path in rule.name_paths:
        value = _walk(alert, path)
        out.append("N/A" if value is None else _text(value))
    return out


def matched_subrules(rule: CorrelationRule, doc: dict) -> int:
    """Bit i set when sub-rule i holds. For create_on "any" the first that holds is enough."""
    mask = 0
    for i, holds in enumerate(rule.subrules):
        if holds(doc):
            mask |= 1 << i
            if not rule.create_on_all:
                break
    return mask


class _Subrule:
    """A sub-rule with the field tests it cannot hold without (`terms`: the field's position in
    RuleIndex.paths, None for `==` or a string method, string), and its condition, or None when
    the tests are the whole condition."""

    __slots__ = ("tests", "terms", "holds")

    def __init__(self, holds: Callable[[dict], bool]):
        terms, whole = field_terms(getattr(holds, "source", ""))
        self.tests = field_tests(terms)
        self.terms: tuple = ()
        self.holds = None if whole else holds

    def keys(self) -> list[tuple[tuple[str, ...], str]]:
        """The (path, string) of its `==` terms."""
        return [(path, literal) for path, test, literal in self.tests if test is None]


class RuleIndex:
    """The rules in force, indexed by the fields they compare with a string: most rules read
    `field == "x" && ...`, and such a rule cannot match an alert whose field holds anything
    else. An alert reads each tested field once, is evaluated only against the rules its own
    values can match (plus the rules without such a comparison), and a sub-rule made of nothing
    but field tests is decided from those values without evaluating its condition. A rule is
    indexed when every one of its sub-rules has an `==` term (its first one is the key).
    Fields are referred to by their position in `paths` (a list lookup, where a dict keyed by
    path tuples hashed every tuple on every read)."""

    def __init__(self, rules: list[CorrelationRule]):
        self.rules = rules
        self.subrules = [tuple(_Subrule(holds) for holds in rule.subrules) for rule in rules]
        self.unindexed: list[int] = []
        self.paths = sorted({term[0] for subs in self.subrules for sub in subs
                             for term in sub.tests})
        slot = {path: i for i, path in enumerate(self.paths)}
        self._reads = [(path[0], None if len(path) == 1 else path) for path in self.paths]
        by_value: dict[int, dict[str, list[int]]] = {}
        for position, subs in enumerate(self.subrules):
            for sub in subs:
                sub.terms = tuple((slot[path], test, literal) for path, test, literal in sub.tests)
            if not all(sub.keys() for sub in subs):
                self.unindexed.append(position)
                continue
            for path, literal in {sub.keys()[0] for sub in subs}:
                by_value.setdefault(slot[path], {}).setdefault(literal, []).append(position)
        self.by_value = list(by_value.items())
        self.reads_source = any("source" in getattr(holds, "source", "")
                                for rule in rules for holds in rule.subrules)

    def fields(self, doc: dict) -> list[object]:
        """The value of every tested field in `doc` (None when missing), in `paths` order."""
        return [doc.get(key) if path is None else _walk(doc, path) for key, path in self._reads]

    def candidates(self, values: list[object]) -> list[int]:
        """The positions of the rules an alert with these field values may match, in order."""
        hits: set[int] | None = None
        for slot, by_literal in self.by_value:
            value = values[slot]
            found = by_literal.get(value) if isinstance(value, str) else None
            if found:
                hits = set(found) if hits is None else hits.union(found)
        if hits is None:
            return self.unindexed
        return sorted(hits.union(self.unindexed))

    def mask(self, position: int, doc: dict, values: list[object]) -> int:
        """`matched_subrules` of rule `position`, skipping the sub-rules the values rule out."""
        mask = 0
        every = self.rules[position].create_on_all
        for i, sub in enumerate(self.subrules[position]):
            if not _passes(sub.terms, values):
                continue
            if sub.holds is None or sub.holds(doc):
                mask |= 1 << i
                if not every:
                    break
        return mask


def _passes(terms: tuple, values: list[object]) -> bool:
    for slot, test, literal in terms:
        value = values[slot]
        if test is None:
            if value != literal:
                return False
        elif not isinstance(value, str) or not test(value, literal):
            return False
    return True


def matches(index: RuleIndex, alert: dict, tenant: str) -> list[list]:
    """[rule name, group key, sub-rule bits, name values] for every (rule, group key) the alert
    joins. Rules see the alert with `source` as its first element, as Keep evaluates them."""
    found: list[list] = []
    doc = alert
    source = alert.get("source")
    if isinstance(source, list) and index.reads_source:
        doc = dict(alert)
        doc["source"] = source[0] if source else None
    fields = index.fields(doc)
    for position in index.candidates(fields):
        rule = index.rules[position]
        if rule.tenants is not None and tenant not in rule.tenants:
            continue
        mask = index.mask(position, doc, fields)
        if not mask:
            continue
        values = name_values(rule, alert)
        for group in group_keys(rule, alert):
            found.append([rule.name, group, mask, values])
    return found
