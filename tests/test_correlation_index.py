"""The correlation rule index: which `field == "x"` terms a condition cannot hold without, and
that matching through the index finds exactly what evaluating every rule finds."""

from __future__ import annotations

import itertools
import random

import pytest

from farm.correlation.matching import RuleIndex, group_keys, matched_subrules, matches, name_values
from farm.correlation.rules import compile_rule
from farm.rules.condition import field_terms


@pytest.mark.parametrize("text, expected, whole", [
    ('service == "db"', [(("service",), "==", "db")], True),
    ('labels.team == "dba" && severity == "critical"',
     [(("labels", "team"), "==", "dba"), (("severity",), "==", "critical")], True),
    ('"dba" == labels.team', [(("labels", "team"), "==", "dba")], True),
    ('has(labels.team) && labels.team == "sre"', [(("labels", "team"), "==", "sre")], False),
    ('(service == "db") && (env == "prod" || env == "dev")', [(("service",), "==", "db")],
     False),
    ('((a == "x" && (b.c == "y")))', [(("a",), "==", "x"), (("b", "c"), "==", "y")], True),
    ('name.startsWith("Rule1") && environment == "production"',
     [(("name",), "startsWith", "Rule1"), (("environment",), "==", "production")], True),
    ('labels.host.contains("db") && x.endsWith("z")',
     [(("labels", "host"), "contains", "db"), (("x",), "endsWith", "z")], True),
    ('name.lowerAscii().contains("x") && a == "b"', [(("a",), "==", "b")], False),
])
def test_field_terms(text, expected, whole):
    assert field_terms(text) == (expected, whole)


@pytest.mark.parametrize("text", [
    'a == "x" || b == "y"',           # either side may hold
    '(a == "x") || (b == "y")',
    'a == "x" ? true : false',
    'a.b == 3',                       # only strings are tested
    'a["b"] == "x"',
    'a.size() == "x"',
    '!a == "x"',
    'a == "x" == true',
    'a.b == "x" + "y"',
    'a != "x"',
    'name.contains("x") == true',
    'name.contains(labels.x)',
    '"abc".contains(name)',
    'name.matches("x")',
    'a == "unterminated',
])
def test_conditions_without_a_field_term(text):
    assert field_terms(text) == ([], False)


def _rule(name: str, condition: str, **table):
    rule, _ = compile_rule({"name": name, "condition": condition, **table})
    return rule


RULES = [
    _rule("team dba", 'labels.team == "dba"', grouping_criteria=["labels.host"]),
    _rule("team and severity", 'labels.team == "web" && severity == "critical"'),
    _rule("either", '(labels.team == "dba") || (service == "auth")', create_on="all",
          grouping_criteria=["service"]),
    _rule("one part unindexed", '(service == "auth") || (name.contains("disk"))'),
    _rule("no literal", 'severity != "info"', incident_name_template="{{ alert.service }}"),
    _rule("source", 'source == "grafana"'),
    _rule("tenant only", 'environment == "prod"', tenants=["acme"]),
    _rule("number", 'labels.code == 5'),
    _rule("only equalities", 'service == "auth" && labels.team == "dba"'),
    _rule("equalities and more", 'service == "auth" && labels.team.startsWith("d")'),
    _rule("null", 'labels.team == null && environment == "prod"'),
    _rule("prefix", '(name.startsWith("disk")) || (labels.host.endsWith("1"))'),
    _rule("prefix and value", 'name.contains("cpu") && service == "auth"', create_on="all"),
    _rule("multi", 'labels.team == "sre"', grouping_criteria=["pods"], multi_level=True,
          multi_level_property_name="node"),
]


def _every_rule(rules: list, alert: dict, tenant: str) -> list[list]:
    """What matching finds when it evaluates every rule (the index must change nothing)."""
    doc = dict(alert)
    if isinstance(alert.get("source"), list):
        doc["source"] = alert["source"][0] if alert["source"] else None
    found = []
    for rule in rules:
        if rule.tenants is not None and tenant not in rule.tenants:
            continue
        mask = matched_subrules(rule, doc)
        if mask:
            found += [[rule.name, group, mask, name_values(rule, alert)]
                      for group in group_keys(rule, alert)]
    return found


def _alerts(count: int):
    rng = random.Random(11)
    values = ["dba", "web", "sre", "auth", "grafana", "prod", "critical", "info", 5, None,
              ["dba"], {"team": "dba"}, "", "DBA"]
    fields = ["service", "severity", "environment", "source", "name"]
    for _ in range(count):
        alert = {f: rng.choice(values) for f in fields if rng.random() < 0.8}
        if rng.random() < 0.3:
            alert["name"] = rng.choice(["disk full", "cpu", "Disk", "high cpu"])
        if rng.random() < 0.3:
            alert["source"] = rng.choice([["grafana", "x"], [], ["prometheus"]])
        labels = rng.choice([None, "dba", {}, {"team": rng.choice(values), "code": rng.choice(
            values), "host": "h1"}])
        if labels is not None:
            alert["labels"] = labels
        if rng.random() < 0.2:
            alert["pods"] = {"p1": {"node": "n1"}, "p2": {"node": rng.choice(["n1", "n2"])}}
        yield alert


@pytest.mark.parametrize("rules", [RULES, [r for r in RULES if r.name != "source"]],
                         ids=["a rule reads source", "no rule reads source"])
def test_the_index_finds_what_evaluating_every_rule_finds(rules):
    index = RuleIndex(rules)
    checked = 0
    for alert, tenant in itertools.product(_alerts(3000), ["default", "acme"]):
        expected = _every_rule(rules, alert, tenant)
        assert matches(index, alert, tenant) == expected, alert
        checked += bool(expected)
    assert checked > 1000  # the population does match rules, not only miss them


def test_rules_without_a_required_equality_are_always_evaluated():
    index = RuleIndex(RULES)
    unindexed = {RULES[i].name for i in index.unindexed}
    assert unindexed == {"one part unindexed", "no literal", "number", "prefix"}
    assert [RULES[i].name for i in index.candidates(index.fields({}))] == [
        "one part unindexed", "no literal", "number", "prefix"]
