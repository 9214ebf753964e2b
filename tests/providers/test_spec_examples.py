"""One worked example per provider (a webhook in its real shape), checked field by field against
what Keep makes of it (docs/keep-compatibility.md#providers; independently of the golden files,
which pin everything else)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import orjson

from farm import config, rules
from farm.pipeline import canonical_alerts

HERE = Path(__file__).parent
NOW = "2025-03-04T08:20:00.000Z"


def alerts_of(provider: str, case: str, cfg=None) -> list[dict]:
    cfg = cfg or config.load(None, env={})
    event = orjson.loads((HERE / provider / f"{case}.json").read_bytes())
    return canonical_alerts(event, provider, NOW, rules.load(cfg).for_batch("default", provider))


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_prometheus_example():
    [a] = alerts_of("prometheus", "spec_example")
    assert (a["id"], a["name"], a["fingerprint"]) == ("DiskAlmostFull", "DiskAlmostFull",
                                                      "a1b2c3d4e5f60718")
    assert a["source"] == ["prometheus"] and a["lastReceived"] == NOW
    assert (a["status"], a["severity"], a["environment"], a["service"]) == (
        "firing", "warning", "staging", "postgres")
    assert a["description"] == "Filesystem /var/lib/pgsql on db-07 is 93% full"
    assert set(a["labels"]) == {"alertname", "instance", "job", "severity", "service",
                                "mountpoint"}
    assert a["annotations"] == {"summary": "Disk on db-07 above 90%",
                                "runbook_url": "https://runbooks.example.org/disk"}
    for key in ("startsAt", "endsAt", "generatorURL"):
        assert a[key] == a["payload"][key]
    assert "fingerprint" not in a["payload"] and "status" not in a["payload"]
    assert (a["alertname"], a["instance"], a["job"], a["mountpoint"], a["value"]) == (
        "DiskAlmostFull", "db-07:9100", "node", "/var/lib/pgsql", "")
    assert a["url"] is None


def test_prometheus_bare_alert_uses_state_and_keeps_leftovers():
    [a] = alerts_of("prometheus", "bare_alert")
    assert a["status"] == "firing"  # "pending" is not in Keep's map
    assert a["severity"] == "critical"
    assert a["value"] == "0e+00" and a["activeAt"] == "2025-03-04T08:19:00.5Z"
    assert a["fingerprint"] == sha256("TargetDown")


def test_grafana_example():
    [a] = alerts_of("grafana", "spec_example")
    assert a["id"] == a["fingerprint"] == "7f3e2a9b1c0d4e5f"
    assert a["name"] == "[FIRING:1] HighLatency API (checkout)"
    assert (a["status"], a["severity"], a["environment"], a["service"]) == (
        "firing", "critical", "prod", "checkout")
    assert a["description"] == "Checkout p99 latency is 2.7s"
    assert a["url"] == "https://grafana.example.org/alerting/grafana/abc123/view"
    assert a["values"] == {"A": 2.7, "C": 1}
    assert (a["value"], a["datasource"]) == ("", "")


def test_grafana_fingerprint_fallbacks():
    first, second = alerts_of("grafana", "resolved_group")
    labels = {"alertname": "PodRestarts", "namespace": "shop", "pod": "cart-5d8f",
              "severity": "low", "environment": "staging"}
    assert first["fingerprint"] == sha256(json.dumps(labels))
    assert second["fingerprint"] == "label-fp-7a1c"
    assert first["url"] is None  # relative generatorURL and no externalURL
    assert second["url"] == "https://grafana.example.org/alerting/grafana/pr01/view"
    [bare] = alerts_of("grafana", "no_labels_paused")
    assert bare["fingerprint"] == sha256("" + "search")
    assert bare["status"] == "suppressed"


def test_grafana_legacy():
    [a] = alerts_of("grafana", "legacy_alerting")
    assert (a["id"], a["fingerprint"], a["name"]) == ("42", "42", "Panel Title alert")
    assert (a["status"], a["severity"]) == ("firing", "critical")
    assert set(a["labels"]) == {"metric", "ruleId", "ruleName", "ruleUrl", "state"}
    [ok] = alerts_of("grafana", "legacy_ok")
    assert ok["status"] == "resolved" and ok["fingerprint"] == "42"


def test_datadog_example():
    [a] = alerts_of("datadog", "spec_example")
    assert a["name"] == "[Triggered on {host:web-03}] High CPU on web tier"
    assert a["fingerprint"] == sha256('["host:web-03"]4567')
    assert a["source"] == ["datadog"]
    assert (a["status"], a["severity"], a["service"]) == ("firing", "high", "storefront")
    assert a["tags"] == {"env": "prod", "role": "web", "service": "storefront"}
    assert a["groups"] == ["host:web-03"]
    assert a["lastReceived"] == "2025-03-04T08:15:30.000Z"
    assert a["imageUrl"] == "https://p.datadoghq.com/snapshot/view/abc.png"
    for dropped in ("event_type", "alert_type", "date", "org"):
        assert dropped not in a


def test_datadog_fingerprint_of_several_scopes():
    [a] = alerts_of("datadog", "recovered_multi_scope")
    assert a["fingerprint"] == sha256('["host:db-1", "host:db-2"]8910')
    assert (a["status"], a["severity"]) == ("resolved", "info")


def test_zabbix_example():
    [a] = alerts_of("zabbix", "spec_example")
    assert (a["status"], a["severity"], a["environment"]) == ("firing", "high", "production")
    assert a["tags"] == {"team": "platform"}
    assert a["hostname"] == a["service"] == "app-12"
    assert a["url"] == "https://zabbix.example.org/tr_events.php?triggerid=23011&eventid=48213"
    assert a["lastReceived"] == "2025-03-04T08:15:30.000Z"  # naive: UTC, not local time
    # farm's fingerprint: name then host (Keep's quirk #4766 fixed) ...
    assert a["fingerprint"] == sha256("High CPU utilization on app-12" + "app-12")
    [resolved] = alerts_of("zabbix", "resolved")
    assert resolved["status"] == "resolved"
    assert resolved["fingerprint"] == a["fingerprint"]


def test_zabbix_keep_fingerprint_by_rule():
    """... and a dedup rule with fingerprint_fields = ["name"] gives Keep's."""
    cfg = config.load(None, env={}, overrides={
        "dedup": {"rules": [{"provider": "zabbix", "fingerprint_fields": ["name"]}]}})
    [a] = alerts_of("zabbix", "spec_example", cfg)
    assert a["fingerprint"] == sha256("High CPU utilization on app-12")


def test_keep_example():
    [a] = alerts_of("keep", "spec_example")
    raw = orjson.loads((HERE / "keep" / "spec_example.json").read_bytes())[0]
    for key, value in raw.items():
        if key != "url":
            assert a[key] == value, key
    assert a["url"] == "https://runbooks.example.org/payments/db"
    assert a["team"] == "payments-oncall"


def test_keep_without_id_or_name():
    [a] = alerts_of("keep", "minimal")
    assert a["id"] == a["name"] == "Nightly backup missing"
    assert (a["status"], a["severity"], a["lastReceived"], a["source"]) == (
        "firing", "info", NOW, ["keep"])
    assert a["fingerprint"] == sha256("Nightly backup missing")
