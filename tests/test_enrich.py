"""Extraction and mapping rules (docs/keep-compatibility.md#enrichment): order, precedence, regex
groups, `*` cells, pre vs post, and what enrichment may not touch. The pipeline tests use a real
Redis."""

from __future__ import annotations

import textwrap

import msgpack
import orjson
import pytest

from farm import config
from farm import rules as farm_rules
from farm.pipeline import Pipeline, canonical_alerts, run_enrichment, unpack_record
from farm.redis_keys import Keys
from farm.rules import SEARCH_CHARS
from farm.wire import encode_batch

NOW = "2025-03-04T08:20:00.000Z"


def write_config(tmp_path, rule_text: str, csv: dict[str, str] | None = None,
                 extra: str = "") -> object:
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "r.toml").write_text(textwrap.dedent(rule_text))
    for name, text in (csv or {}).items():
        (tmp_path / "rules" / name).write_text(textwrap.dedent(text).lstrip())
    path = tmp_path / "farm.toml"
    path.write_text(f'[enrichment]\nfiles = ["rules/r.toml"]\n{extra}')
    return config.load(path, env={})


def enriched(cfg, event: dict, provider: str = "keep", tenant: str = "default") -> dict:
    """Normalize one event and run post-extraction and mapping on its (only) alert."""
    batch_rules = farm_rules.load(cfg).for_batch(tenant, provider)
    [alert] = canonical_alerts(event, provider, NOW, batch_rules)
    run_enrichment(alert, batch_rules, NOW)
    return alert


def test_extraction_sets_named_groups(tmp_path):
    cfg = write_config(tmp_path, r"""
        [[extraction]]
        name = "host and port"
        attribute = "labels.instance"
        regex = '^(?P<host>[^:]+):(?P<port>\d+)(?P<path>/\S+)?$'
    """)
    alert = enriched(cfg, {"name": "x", "labels": {"instance": "db-07:9100"}})
    assert (alert["host"], alert["port"]) == ("db-07", "9100")
    assert "path" in alert and alert["path"] is None  # did not take part: None, as in Keep


def test_extraction_never_overrides_source(tmp_path):
    cfg = write_config(tmp_path, r"""
        [[extraction]]
        name = "source group"
        attribute = "name"
        regex = '(?P<source>\w+) (?P<word>\w+)'
    """)
    alert = enriched(cfg, {"name": "grafana thing"})
    assert alert["source"] == ["keep"] and alert["word"] == "thing"


def test_extraction_rules_run_by_priority_and_see_earlier_results(tmp_path):
    cfg = write_config(tmp_path, r"""
        [[extraction]]
        name = "second: datacenter from host"
        priority = 1
        attribute = "host"
        regex = '^(?P<dc>[a-z]+)\d*-'

        [[extraction]]
        name = "first: host from instance"
        priority = 9
        attribute = "labels.instance"
        regex = '^(?P<host>[^:]+)'

        [[extraction]]
        name = "last: overwrites dc"
        priority = 0
        attribute = "dc"
        regex = '^(?P<dc>fra)$'
        condition = 'dc == "fra"'
    """)
    alert = enriched(cfg, {"name": "x", "labels": {"instance": "fra1-db-07:9100"}})
    assert (alert["host"], alert["dc"]) == ("fra1-db-07", "fra")


def test_condition_and_templates(tmp_path):
    cfg = write_config(tmp_path, r"""
        [[extraction]]
        name = "only in production"
        attribute = "{{ service }}/{{ labels.pod }}"
        regex = '^(?P<app>[a-z]+)/(?P=app)-(?P<replica>\w+)$'
        condition = 'environment == "production" && labels.pod.startsWith(service)'
    """)
    event = {"name": "x", "service": "cart", "labels": {"pod": "cart-5d8f"}}
    assert enriched(cfg, dict(event, environment="production"))["replica"] == "5d8f"
    assert "replica" not in enriched(cfg, dict(event, environment="staging"))
    # A missing field makes the condition false; the next rule still runs (Keep aborts).
    assert "replica" not in enriched(cfg, {"name": "x", "labels": {"pod": "cart-5d8f"}})


def test_an_empty_attribute_skips_the_rule(tmp_path):
    cfg = write_config(tmp_path, r"""
        [[extraction]]
        name = "anything"
        attribute = "missing"
        regex = '(?P<all>.*)'
    """)
    assert "all" not in enriched(cfg, {"name": "x"})


def test_extraction_output_is_validated_like_keep_rebuilds_its_alert(tmp_path):
    cfg = write_config(tmp_path, r"""
        [[extraction]]
        name = "fields from the message"
        attribute = "message"
        regex = 'sev=(?P<severity>\w+) state=(?P<status>\w+) at=(?P<lastReceived>\S+)'
    """)
    alert = enriched(cfg, {"name": "x", "message": "sev=critical state=nonsense at=1741076130"})
    assert (alert["severity"], alert["status"], alert["lastReceived"]) == (
        "critical", "firing", "2025-03-04T08:15:30.000Z")


def test_rules_cannot_make_labels_a_non_map_or_source_a_non_list(tmp_path):
    cfg = write_config(tmp_path, r"""
        [[extraction]]
        name = "a word for labels"
        attribute = "message"
        regex = '^(?P<labels>\w+)'

        [[mapping]]
        name = "a number for source, a string for labels"
        matchers = [["name"]]
        rows = [{ name = "x", source = 5, labels = "oops", team = "a" }]
    """)
    alert = enriched(cfg, {"name": "x", "message": "word", "labels": {"host": "db-1"},
                           "source": ["nagios"]})
    assert (alert["labels"], alert["source"], alert["team"]) == ({"host": "db-1"}, ["nagios"],
                                                                 "a")


def test_rules_may_set_labels_to_a_map_and_source_to_a_name(tmp_path):
    cfg = write_config(tmp_path, r"""
        [[extraction]]
        name = "labels did not take part"
        attribute = "message"
        regex = '^(?P<word>\w+)|(?P<labels>never)'

        [[mapping]]
        name = "source by name"
        matchers = [["word"]]
        rows = [{ word = "disk", source = "zabbix" }, { word = "cpu", labels = { team = "a" } }]
    """)
    disk = enriched(cfg, {"name": "x", "message": "disk", "labels": {"host": "db-1"}})
    assert (disk["labels"], disk["source"]) == ({}, ["zabbix"])  # a null labels is {}
    assert enriched(cfg, {"name": "x", "message": "cpu"})["labels"] == {"team": "a"}


def test_rule_regexes_search_only_the_first_search_chars_of_a_value(tmp_path):
    cfg = write_config(tmp_path, r"""
        [[extraction]]
        name = "host"
        attribute = "message"
        regex = 'host=(?P<host>[a-z0-9-]+)'

        [[extraction]]
        name = "in the EU"
        attribute = "name"
        regex = '(?P<in_eu>.+)'
        condition = 'message.matches("zone=eu")'

        [[mapping]]
        name = "team by description"
        matchers = [["description"]]
        rows = [{ description = "team=(db|web)", team = "found" }]
    """)
    tail = " zone=eu host=db-1 team=db"
    near = {"name": "x", "message": "z" * (SEARCH_CHARS - len(tail)) + tail}
    near["description"] = near["message"]
    alert = enriched(cfg, near)
    assert (alert["host"], alert["in_eu"], alert["team"]) == ("db-1", "x", "found")
    far = {"name": "x", "message": "z" * SEARCH_CHARS + tail}
    far["description"] = far["message"]
    alert = enriched(cfg, far)
    assert not {"host", "in_eu", "team"} & set(alert)


def test_enrichment_never_changes_identity(tmp_path):
    cfg = write_config(tmp_path, r"""
        [[extraction]]
        name = "tries to move the alert"
        attribute = "message"
        regex = '(?P<fingerprint>\w+) (?P<eventId>\w+) (?P<name>\w*)'

        [[mapping]]
        name = "also tries"
        matchers = [["name"]]
        rows = [{ name = "x", fingerprint = "other", tenant = "other", team = "a" }]
    """)
    alert = enriched(cfg, {"name": "x", "message": "fp ev "})
    assert alert["fingerprint"] != "fp" and alert["fingerprint"] != "other"
    assert "eventId" not in alert and alert.get("tenant") is None
    assert alert["name"] == "x" and alert["team"] == "a"


def test_pre_extraction_runs_on_the_raw_event_before_fingerprinting(tmp_path):
    cfg = write_config(tmp_path, r"""
        [[extraction]]
        name = "service from the Zabbix host name"
        pre = true
        attribute = "host_name"
        regex = '^(?P<service>[a-z]+)-\d+$'
    """)
    batch_rules = farm_rules.load(cfg).for_batch("default", "zabbix")
    raw = {"id": "1", "name": "CPU high", "host_name": "app-12", "severity": "High"}
    [alert] = canonical_alerts(raw, "zabbix", NOW, batch_rules)
    # Zabbix takes `service` as the host: the pre rule put "app" there before formatting.
    assert alert["service"] == alert["hostname"] == "app"
    assert "service" not in raw  # the raw event (and its dead letter) stays as sent


def test_mapping_first_matching_row_and_star_cells(tmp_path):
    cfg = write_config(tmp_path, """
        [[mapping]]
        name = "owners"
        matchers = [["service", "environment"]]
        csv = "owners.csv"
    """, {"owners.csv": """
        service,environment,owner,tier
        ^postgres$,^prod,dba,1
        postgres,*,dba-nonprod,2
        *,*,nobody,3
    """})
    assert enriched(cfg, {"name": "x", "service": "postgres", "environment": "production"})[
        "owner"] == "dba"
    second = enriched(cfg, {"name": "x", "service": "postgres-replica", "environment": "prod"})
    assert (second["owner"], second["tier"]) == ("dba-nonprod", "2")
    assert enriched(cfg, {"name": "x", "service": "web", "environment": "dev"})[
        "owner"] == "nobody"
    # No matcher group exists on the alert (environment is None): the rule is not considered.
    assert "owner" not in enriched(cfg, {"name": "x", "service": "web"})


def test_mapping_groups_are_ored_and_matcher_columns_are_not_copied(tmp_path):
    cfg = write_config(tmp_path, """
        [[mapping]]
        name = "by service or by pod"
        matchers = [["service"], ["labels.pod"]]
        rows = [
          { service = "^none$", "labels.pod" = "cart-", team = "cart-team" },
          { service = "checkout", "labels.pod" = "^none$", team = "payments" },
        ]
    """)
    by_pod = enriched(cfg, {"name": "x", "service": "web", "labels": {"pod": "cart-5d8f"}})
    assert by_pod["team"] == "cart-team" and by_pod["service"] == "web"
    assert "labels.pod" not in by_pod
    assert enriched(cfg, {"name": "x", "service": "checkout"})["team"] == "payments"


def test_every_mapping_rule_runs_and_later_ones_overwrite(tmp_path):
    cfg = write_config(tmp_path, """
        [[mapping]]
        name = "low priority, runs last"
        priority = 1
        matchers = [["service"]]
        rows = [{ service = "*", owner = "fallback", oncall = "ops" }]

        [[mapping]]
        name = "high priority, runs first"
        priority = 5
        matchers = [["service"]]
        rows = [{ service = "checkout", owner = "payments", escalation = "p1" }]
    """)
    alert = enriched(cfg, {"name": "x", "service": "checkout"})
    assert (alert["owner"], alert["oncall"], alert["escalation"]) == ("fallback", "ops", "p1")


def test_mapping_runs_after_post_extraction(tmp_path):
    cfg = write_config(tmp_path, r"""
        [[extraction]]
        name = "team from pod"
        attribute = "labels.pod"
        regex = '^(?P<team>[a-z]+)-'

        [[mapping]]
        name = "team channel"
        matchers = [["team"]]
        rows = [{ team = "^cart$", channel = "#cart" }]
    """)
    assert enriched(cfg, {"name": "x", "labels": {"pod": "cart-1"}})["channel"] == "#cart"


def test_mapping_paths_source_and_literal_dots(tmp_path):
    cfg = write_config(tmp_path, """
        [[mapping]]
        name = "by first source and a dotted label"
        matchers = [["source", "labels.app@@kubernetes@@io/name"]]
        rows = [{ source = "^custom$", "labels.app@@kubernetes@@io/name" = "cart", team = "t" }]
    """)
    event = {"name": "x", "source": ["custom", "other"],
             "labels": {"app.kubernetes.io/name": "cart"}}
    assert enriched(cfg, event)["team"] == "t"


def test_mapping_cells_and_values_are_stripped(tmp_path):
    cfg = write_config(tmp_path, """
        [[mapping]]
        name = "owners"
        matchers = [["service"]]
        csv = "owners.csv"
    """, {"owners.csv": """
        service, owner ,note
        web,  web-team  ,
    """})
    alert = enriched(cfg, {"name": "x", "service": "web"})
    assert alert["owner"] == "web-team"
    assert alert["note"] == ""  # an empty cell is a value in Keep, not a missing one


def test_multi_level_mapping(tmp_path):
    cfg = write_config(tmp_path, """
        [[mapping]]
        name = "customers"
        matchers = [["customers"]]
        multi_level = true
        new_property_name = "customer_info"
        prefix_to_remove = "cust-"
        rows = [
          { customers = "acme", tier = "gold" },
          { customers = "globex", tier = "silver" },
        ]
    """)
    alert = enriched(cfg, {"name": "x", "customers": '["cust-acme", "cust-globex", "x"]'})
    assert alert["customer_info"] == {"acme": {"customers": "acme", "tier": "gold"},
                                      "globex": {"customers": "globex", "tier": "silver"}}


def test_rules_can_be_limited_to_tenants(tmp_path):
    cfg = write_config(tmp_path, """
        [[mapping]]
        name = "acme only"
        tenants = ["acme"]
        matchers = [["name"]]
        rows = [{ name = "*", customer = "ACME" }]
    """)
    assert enriched(cfg, {"name": "x"}, tenant="acme")["customer"] == "ACME"
    assert "customer" not in enriched(cfg, {"name": "x"}, tenant="default")


def test_disabled_rules_and_switch(tmp_path):
    rule = """
        [[mapping]]
        name = "m"
        matchers = [["name"]]
        rows = [{ name = "*", tagged = "yes" }]
        disabled = DISABLED
    """
    assert "tagged" not in enriched(write_config(tmp_path, rule.replace("DISABLED", "true")),
                                    {"name": "x"})
    on = write_config(tmp_path, rule.replace("DISABLED", "false"))
    assert enriched(on, {"name": "x"})["tagged"] == "yes"
    off = write_config(tmp_path, rule.replace("DISABLED", "false"),
                       extra="enabled = false\n")
    assert "tagged" not in enriched(off, {"name": "x"})


def _stored_docs(outcome) -> list[dict]:
    docs = []
    for record in outcome.records:
        history, _, _ = msgpack.unpackb(unpack_record(record)[2])
        docs += [orjson.loads(row[-1]) for row in history]
    return docs


@pytest.fixture
def rule_config(tmp_path):
    return write_config(tmp_path, r"""
        [[extraction]]
        name = "counter"
        attribute = "message"
        regex = 'seen (?P<seen>\d+) times'

        [[mapping]]
        name = "owner"
        matchers = [["name"]]
        rows = [{ name = "*", owner = "ops" }]
    """)


def test_enrichment_does_not_change_dedup_decisions(redis, rule_config):
    """Post-extraction and mapping run after the decision: they are not part of the hash."""
    pipeline = Pipeline(rule_config, redis, Keys("e"))
    alert = {"id": "1", "name": "Flappy", "message": "seen 1 times"}
    first = pipeline.process(encode_batch([alert, alert], "keep", "default", "b1", 1.0e9))
    assert first.decisions == {"n": 1, "p": 0, "f": 1}
    [doc] = _stored_docs(first)
    assert (doc["seen"], doc["owner"]) == ("1", "ops")
    again = pipeline.process(encode_batch([alert], "keep", "default", "b2", 1.0e9 + 60))
    assert again.decisions == {"n": 0, "p": 0, "f": 1}
    assert _stored_docs(again) == []


def test_redelivered_batch_is_enriched_identically(redis, rule_config):
    pipeline = Pipeline(rule_config, redis, Keys("e"))
    raw = encode_batch([{"name": "A", "message": "seen 3 times"}, {"name": "B"}], "keep",
                       "default", "b9", 1.0e9)
    strip = [{k: v for k, v in d.items() if k != "processedAt"}
             for d in _stored_docs(pipeline.process(raw))]
    assert strip == [{k: v for k, v in d.items() if k != "processedAt"}
                     for d in _stored_docs(pipeline.process(raw))]
