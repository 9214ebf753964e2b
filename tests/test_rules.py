"""Rule configuration: [[dedup.rules]] and rule files are checked at start, with one clear line
per mistake; the condition (CEL subset) and template compilers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from farm import config, rules
from farm.rules.condition import ConditionError, compile_condition
from farm.rules.dedup_rules import parse_rules, select
from farm.rules.ruleset import RuleError
from farm.rules.template import Template, TemplateError, wrap

EXAMPLE = Path(__file__).resolve().parent.parent / "configs" / "enrichment" / "example.toml"


def load_text(tmp_path, text: str):
    path = tmp_path / "farm.toml"
    path.write_text(textwrap.dedent(text))
    return config.load(path, env={})


def problems_of(tmp_path, rule_text: str, csv: dict[str, str] | None = None) -> list[str]:
    (tmp_path / "r.toml").write_text(textwrap.dedent(rule_text))
    for name, body in (csv or {}).items():
        (tmp_path / name).write_text(textwrap.dedent(body).lstrip())
    return rules.validate(load_text(tmp_path, '[enrichment]\nfiles = ["r.toml"]\n'))


# --- [[dedup.rules]] --------------------------------------------------------------------------

def test_dedup_rules_are_read_from_the_config(tmp_path):
    cfg = load_text(tmp_path, """
        [[dedup.rules]]
        name = "zabbix like keep"
        provider = "zabbix"
        fingerprint_fields = ["name"]

        [[dedup.rules]]
        provider = "prometheus"
        tenant = "acme"
        ignore_fields = ["startsAt"]
    """)
    assert rules.validate(cfg) == []
    loaded = rules.load(cfg)
    assert loaded.for_batch("x", "zabbix").dedup_rule == "zabbix like keep"
    assert loaded.for_batch("x", "prometheus").dedup_rule is None
    acme = loaded.for_batch("acme", "prometheus")
    assert {"startsAt", "lastReceived"} <= acme.hasher.top_level


@pytest.mark.parametrize("rule, expected", [
    ('provider = "nagios"', "provider 'nagios' must be one of prometheus, grafana"),
    ('provider = "keep"\nfingerprint_field = ["name"]', "unknown key 'fingerprint_field'"),
    ('provider = "keep"\nignore_fields = "lastReceived"', "ignore_fields must be a list"),
    ('provider = "keep"\nfull_deduplication = "yes"', "full_deduplication must be true or"),
    ('provider = "keep"\nfull_deduplication = false\nignore_fields = ["x"]',
     "ignore_fields has no effect with full_deduplication = false"),
    ('provider = "keep"\ntenant = ""', "tenant must be a non-empty string"),
])
def test_bad_dedup_rules_stop_start_up(tmp_path, rule, expected):
    with pytest.raises(config.ConfigError) as err:
        load_text(tmp_path, f"[[dedup.rules]]\n{rule}\n")
    message = str(err.value)
    assert message.startswith("[dedup] rules = ") and expected in message
    assert "\n" not in message


def test_two_rules_for_one_scope_are_rejected(tmp_path):
    with pytest.raises(config.ConfigError, match="both cover provider 'keep', tenant 'a'"):
        load_text(tmp_path, """
            [[dedup.rules]]
            provider = "keep"
            tenant = "a"
            [[dedup.rules]]
            provider = "keep"
            tenant = "a"
            ignore_fields = ["x"]
        """)


def test_the_most_specific_rule_wins():
    found = parse_rules([
        {"name": "any", "provider": "keep"},
        {"name": "tenant", "provider": "keep", "tenant": "t"},
        {"name": "id", "provider": "keep", "provider_id": "p"},
        {"name": "both", "provider": "keep", "tenant": "t", "provider_id": "p"},
    ])
    assert select(found, "t", "keep", "p").name == "both"
    assert select(found, "t", "keep", None).name == "tenant"
    assert select(found, "u", "keep", "p").name == "id"
    assert select(found, "u", "keep", None).name == "any"
    assert select(found, "u", "grafana", None) is None


def test_a_rule_without_fingerprint_fields_keeps_the_provider_fingerprint():
    [rule] = parse_rules([{"provider": "prometheus", "ignore_fields": ["startsAt"]}])
    assert rule.fingerprint_fields == ()


# --- rule files -------------------------------------------------------------------------------

def test_the_example_rule_file_is_valid(tmp_path):
    cfg = load_text(tmp_path, f'[enrichment]\nfiles = ["{EXAMPLE}"]\n')
    assert rules.validate(cfg) == []
    loaded = rules.load(cfg)
    assert [r.name for r in loaded.mapping] == ["service owners", "environment tier"]


def test_rule_file_paths_are_relative_to_the_config_file(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "r.toml").write_text('[[mapping]]\nname = "m"\nmatchers = [["a"]]\n'
                                              'rows = [{ a = "*", b = "c" }]\n')
    (tmp_path / "conf" / "farm.toml").write_text('[enrichment]\nfiles = ["r.toml"]\n')
    monkeypatch.chdir(tmp_path)
    assert rules.validate(config.load(tmp_path / "conf" / "farm.toml", env={})) == []


def test_only_toml_rule_files_are_accepted(tmp_path):
    with pytest.raises(config.ConfigError, match=r"\[enrichment\] files = .*must be a .toml"):
        load_text(tmp_path, '[enrichment]\nfiles = ["owners.csv"]\n')


@pytest.mark.parametrize("rule, expected", [
    ("[[extraction]]\nattribute = 'a'\nregex = '(?P<x>.)'", "name is required"),
    ("[[extraction]]\nname = 'r'\nregex = '(?P<x>.)'", "attribute is required"),
    ("[[extraction]]\nname = 'r'\nattribute = 'a'\nregex = '(?P<x>'",
     "regex '(?P<x>' does not compile"),
    ("[[extraction]]\nname = 'r'\nattribute = 'a'\nregex = '(a)'", "has no named group"),
    ("[[extraction]]\nname = 'r'\nattribute = 'a'\nregex = '(?P<x>.)'\ncondition = 'a =='",
     "condition 'a ==': expected a value"),
    ("[[extraction]]\nname = 'r'\nattribute = 'a'\nregex = '(?P<x>.)'\n"
     "condition = 'name.matches(labels.p)'", "matches() needs a literal regex string"),
    ("[[extraction]]\nname = 'r'\nattribute = '{{#a}}x{{/a}}'\nregex = '(?P<x>.)'",
     "is not supported"),
    ("[[extraction]]\nname = 'r'\nattribute = 'a'\nregex = '(?P<x>.)'\npriority = 'high'",
     "priority must be a whole number"),
    ("[[extraction]]\nname = 'r'\nattribute = 'a'\nregex = '(?P<x>.)'\nregexp = 'x'",
     "unknown key 'regexp'"),
    ("[[mapping]]\nname = 'm'\nmatchers = ['service']\nrows = [{service = 'a'}]",
     "matchers must be a list of non-empty lists"),
    ("[[mapping]]\nname = 'm'\nmatchers = [['service']]", "either as csv"),
    ("[[mapping]]\nname = 'm'\nmatchers = [['service']]\nrows = [{ owner = 'a' }]",
     "matcher attribute 'service' is not a column"),
    ("[[mapping]]\nname = 'm'\nmatchers = [['s']]\nrows = [{ s = 'a' }]\ntype = 'topology'",
     "type 'topology' is not supported"),
    ("[[mapping]]\nname = 'm'\nmatchers = [['s']]\nrows = [{ s = 'a' }]\nmulti_level = true",
     "needs exactly one matcher attribute"),
    ("[[mapping]]\nname = 'm'\nmatchers = [['s']]\ncsv = 'nope.csv'", "nope.csv does not exist"),
    ("[[alerts]]\nname = 'x'", "unknown table 'alerts'"),
    ("[[mapping]\nname = 'x'", "not valid TOML"),
])
def test_bad_rule_files_are_rejected_with_a_clear_message(tmp_path, rule, expected):
    found = problems_of(tmp_path, rule)
    assert len(found) == 1, found
    assert str(tmp_path / "r.toml") in found[0] and expected in found[0], found[0]


def test_every_problem_of_a_file_is_reported_with_its_rule(tmp_path):
    found = problems_of(tmp_path, """
        [[extraction]]
        name = "good"
        attribute = "a"
        regex = '(?P<x>.)'

        [[extraction]]
        name = "bad one"
        attribute = "a"
        regex = '(?P<x>'

        [[mapping]]
        name = "bad two"
        matchers = [["s"]]
        csv = "t.csv"
    """, {"t.csv": "s,owner\na,b,c\n"})
    assert len(found) == 2
    assert "[[extraction]] #2 ('bad one')" in found[0]
    assert "[[mapping]] #1 ('bad two')" in found[1] and "line 2 has more cells" in found[1]


def test_a_missing_rule_file_is_reported(tmp_path):
    cfg = load_text(tmp_path, '[enrichment]\nfiles = ["missing.toml"]\n')
    [problem] = rules.validate(cfg)
    assert problem == f"{tmp_path / 'missing.toml'}: rule file does not exist"
    with pytest.raises(RuleError):
        rules.load(cfg)


def test_rule_files_are_not_read_when_enrichment_is_off(tmp_path):
    cfg = load_text(tmp_path, '[enrichment]\nenabled = false\nfiles = ["missing.toml"]\n')
    assert rules.validate(cfg) == []


# --- the CEL subset -----------------------------------------------------------------------------

DOC = {"name": "Disk full on db-1", "severity": "critical", "source": ["prometheus"],
       "labels": {"env": "prod", "n": "5", "dotted.key": "v"}, "count": 3, "none": None,
       "flag": True}


@pytest.mark.parametrize("text, expected", [
    ('labels.env == "prod"', True),
    ('labels.env != "prod"', False),
    ("severity > 'warning'", False),  # strings compare as strings, as in Keep's extraction
    ('name.contains("Disk") && labels.env == "prod"', True),
    ('name.startsWith("Disk") || missing.field', True),
    ('missing.field || name.endsWith("db-1")', True),  # CEL: an error || true is true
    ("missing.field && false", False),
    ("missing.field", False),
    ('"prometheus" in source', True),
    ('labels["dotted.key"] == "v"', True),
    ("has(labels.env) && !has(labels.zone)", True),
    ("int(labels.n) * 2 + count == 13", True),
    ("count / 2 == 1 && count % 2 == 1", True),
    ("-count < 0", True),
    ("size(source) == 1 && source[0] == 'prometheus'", True),
    ('name.matches("^Disk .* db-[0-9]+$")', True),
    ("none == null", True),
    ("flag == 1", False),  # no bool/int coercion
    ("count == 3.0", True),
    ("count > 'a'", False),  # a type error: the condition does not hold
    ("flag ? count == 3 : false", True),
    ("labels.env.upperAscii() == 'PROD'", True),
    ("{'a': 1}['a'] == 1 && [1, 2][1] == 2", True),
    ("string(count) == '3' && double('1.5') == 1.5", True),
    (r"'\u00e9t\u00e9' == 'été' && r'\d' == '\\d'", True),
])
def test_conditions(text, expected):
    assert compile_condition(text)(DOC) is expected


@pytest.mark.parametrize("text, paths", [
    ('labels.team == "db" && severity < "critical"', {("labels", "team"), ("severity",)}),
    ('labels.instance.startsWith("lab-") || name.contains("x")',
     {("labels", "instance"), ("name",)}),
    ("has(labels.x) && size(labels) > 2", {("labels",), ("labels", "x")}),
    ("labels['a'] == 'b'", {("labels",)}),             # an index reads the whole map
    ("{'a': labels.z}.a == 1 && true", {("labels", "z")}),
    ("flag ? count == 3 : other.n > 1", {("flag",), ("count",), ("other", "n")}),
    ("'x'.size() == 1", set()),
])
def test_conditions_name_the_field_paths_they_read(text, paths):
    """What a caller may key a remembered verdict on: every read starts at a top-level field."""
    assert compile_condition(text).paths == paths


@pytest.mark.parametrize("text", [
    "labels.env ==", "a = b", "exists(x)", "name.split(',')", "has(name)", "(a",
    "name.matches('(')", "'unterminated",
])
def test_conditions_outside_the_subset_are_rejected(text):
    with pytest.raises(ConditionError):
        compile_condition(text)


@pytest.mark.parametrize("text", ["name.matches(labels.env)", "matches(name, labels.env)",
                                  "name.matches(5)"])
def test_matches_takes_only_a_literal_regex(text):
    """A pattern read from the alert would let a payload choose a regex that never ends."""
    with pytest.raises(ConditionError, match="matches\\(\\) needs a literal regex string"):
        compile_condition(text)


def test_a_constant_regex_expression_is_accepted():
    assert compile_condition('name.matches("^Disk " + ".*")')(DOC) is True


# --- templates ---------------------------------------------------------------------------------

@pytest.mark.parametrize("attribute, expected", [
    ("labels.env", "prod"),
    ("{{ labels.env }}", "prod"),
    ("{{ source.0 }}/{{ labels.env }}", "prometheus/prod"),
    ("count", "3"),
    ("none", ""),
    ("missing.deeper", ""),
    ("{{ flag }} {{ zero }} {{ empty }}", "True 0 "),
    ("{{ html }}|{{{ html }}}|{{& html }}", "<b>&amp;</b>|<b>&</b>|<b>&</b>"),
    ("{{! a comment }}x {{ labels.env }}", "x prod"),
])
def test_templates(attribute, expected):
    doc = dict(DOC, zero=0, empty=[], html="<b>&amp;</b>")
    assert Template(wrap(attribute)).render(doc) == expected


def test_wrap_follows_keep():
    assert wrap("labels.env") == "{{ labels.env }}"
    assert wrap("{{ a }} and b") == "{{ a }} and b"
    assert wrap("a and {{ b }}") == "a and {{ b }}"


@pytest.mark.parametrize("source", ["{{#a}}x{{/a}}", "{{> partial }}", "{{ a }", "{{}}"])
def test_unsupported_templates_are_rejected(source):
    with pytest.raises(TemplateError):
        Template(source)


# --- Keep's field-list fingerprint -----------------------------------------------------------

def keep_reference_fingerprint(event: dict, fields: list[str]) -> str:
    """Keep's field-list fingerprint (docs/keep-compatibility.md#fingerprinting), written out
    plainly: the reference farm's fast version must match."""
    import hashlib
    import json

    hasher = hashlib.sha256()
    for field in fields:
        value = event
        for key in field.split("."):
            value = value.get(key) if isinstance(value, dict) else None
            if value is None:
                break
        if isinstance(value, (list, dict)):
            value = json.dumps(value)
        if value is not None:
            hasher.update(str(value).encode())
    return hasher.hexdigest()


def test_field_list_fingerprint_matches_keep():
    import random

    from farm.alert import fields_fingerprint, split_fields

    rng = random.Random(5)
    chars = 'ab"\\/\né€𝄞 ,:'
    for _ in range(3000):
        text = lambda: "".join(rng.choice(chars) for _ in range(rng.randint(0, 5)))  # noqa: E731
        event = {"name": text(), "groups": [text() for _ in range(rng.randint(0, 3))],
                 "labels": {"a": text(), "n": rng.randint(0, 9), "f": rng.random() < 0.5,
                            "m": {"x": [1, text()]}},
                 "monitor_id": rng.choice([None, 4567, "4567", 1.5])}
        fields = rng.sample(["name", "groups", "labels.a", "labels.n", "labels.f", "labels.m",
                             "labels.zz", "monitor_id", "labels.a.deeper"], k=rng.randint(1, 4))
        assert fields_fingerprint(event, split_fields(fields)) == \
            keep_reference_fingerprint(event, fields)


def test_field_list_fingerprint_reads_keep_defaults_of_absent_fields():
    from farm.alert import fields_fingerprint, split_fields

    assert fields_fingerprint({"name": "x"}, split_fields(["pushed", "firingCounter"])) == \
        keep_reference_fingerprint({"pushed": False, "firingCounter": 0},
                                   ["pushed", "firingCounter"])
