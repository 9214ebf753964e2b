"""Which correlation rules an alert matches, and the group keys and name values it brings
(docs/keep-compatibility.md#correlation). Pure CPU work, run by the worker per alert."""

from __future__ import annotations

from farm.correlation.rules import CorrelationRule

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
    for path in rule.name_parts[1::2]:
        value = _walk(alert, tuple(path.split(".")))
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


def matches(rules: list[CorrelationRule], alert: dict, tenant: str) -> list[list]:
    """[rule name, group key, sub-rule bits, name values] for every (rule, group key) the alert
    joins. Rules see the alert with `source` as its first element, as Keep evaluates them."""
    found: list[list] = []
    doc = alert
    source = alert.get("source")
    if isinstance(source, list):
        doc = dict(alert)
        doc["source"] = source[0] if source else None
    for rule in rules:
        if rule.tenants is not None and tenant not in rule.tenants:
            continue
        mask = matched_subrules(rule, doc)
        if not mask:
            continue
        values = name_values(rule, alert)
        for group in group_keys(rule, alert):
            found.append([rule.name, group, mask, values])
    return found
