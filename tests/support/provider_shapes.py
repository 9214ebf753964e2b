"""Each provider's real webhook shape (docs/keep-compatibility.md#providers), as checks on
one generated body. A check raises AssertionError naming the field that is wrong."""

from __future__ import annotations

import json
import re
from datetime import datetime

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
NEVER = "0001-01-01T00:00:00Z"
HEX16 = re.compile(r"[0-9a-f]{16}")


def _labels(labels, where: str) -> None:
    assert isinstance(labels, dict) and labels, f"{where}: labels must be a non-empty map"
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()), \
        f"{where}: labels map strings to strings"


def _times(alert: dict, status: str, where: str) -> None:
    assert ISO.fullmatch(alert["startsAt"]), f"{where}: startsAt {alert['startsAt']!r}"
    if status == "firing":
        assert alert["endsAt"] == NEVER, f"{where}: a firing alert has the zero endsAt"
    else:
        assert ISO.fullmatch(alert["endsAt"]), f"{where}: endsAt {alert['endsAt']!r}"
        assert alert["endsAt"] > alert["startsAt"], f"{where}: resolved before it started"


def prometheus(body: dict) -> None:
    """Alertmanager webhook v4."""
    assert set(body) == {"receiver", "status", "alerts", "groupLabels", "commonLabels",
                         "commonAnnotations", "externalURL", "version", "groupKey",
                         "truncatedAlerts"}, sorted(body)
    assert body["version"] == "4" and body["truncatedAlerts"] == 0
    assert body["status"] in ("firing", "resolved")
    assert body["externalURL"].startswith("http")
    alerts = body["alerts"]
    assert 1 <= len(alerts) <= 5, "1-5 alerts per notification"
    statuses = {a["status"] for a in alerts}
    assert body["status"] == ("firing" if "firing" in statuses else "resolved")
    for i, alert in enumerate(alerts):
        where = f"alerts[{i}]"
        assert set(alert) == {"status", "labels", "annotations", "startsAt", "endsAt",
                              "generatorURL", "fingerprint"}, sorted(alert)
        assert "id" not in alert, "Alertmanager sends no id (Keep fails an alert with one)"
        _labels(alert["labels"], where)
        assert "alertname" in alert["labels"]
        assert alert["labels"].get("severity") in ("critical", "error", "warning", "info",
                                                   "low")
        assert all(alert["labels"].get(k) == v for k, v in body["commonLabels"].items()), \
            f"{where}: commonLabels must be shared by every alert"
        assert isinstance(alert["annotations"], dict) and "summary" in alert["annotations"]
        _times(alert, alert["status"], where)
        assert alert["generatorURL"].startswith("http")
        assert HEX16.fullmatch(alert["fingerprint"]), f"{where}: fingerprint"
    assert body["groupLabels"] == {"alertname": alerts[0]["labels"]["alertname"]}


def grafana(body: dict) -> None:
    """Grafana unified alerting, not the legacy shape."""
    assert "evalMatches" not in body, "unified alerting, not legacy"
    for key in ("receiver", "status", "orgId", "alerts", "groupLabels", "commonLabels",
                "commonAnnotations", "externalURL", "version", "groupKey", "truncatedAlerts",
                "title", "state", "message"):
        assert key in body, f"missing {key}"
    assert body["status"] in ("firing", "resolved") and body["version"] == "1"
    assert body["state"] == ("alerting" if body["status"] == "firing" else "ok")
    count = len(body["alerts"])
    assert 1 <= count <= 4
    assert body["title"].startswith(f"[FIRING:{count}]" if body["status"] == "firing"
                                    else "[RESOLVED]"), body["title"]
    for i, alert in enumerate(body["alerts"]):
        where = f"alerts[{i}]"
        for key in ("status", "labels", "annotations", "startsAt", "endsAt", "generatorURL",
                    "fingerprint", "silenceURL", "dashboardURL", "panelURL", "values",
                    "valueString"):
            assert key in alert, f"{where}: missing {key}"
        _labels(alert["labels"], where)
        assert alert["labels"]["severity"] in ("critical", "high", "warning", "info")
        assert alert["status"] == body["status"]
        _times(alert, alert["status"], where)
        assert HEX16.fullmatch(alert["fingerprint"])
        assert isinstance(alert["values"], dict)
        assert not alert["generatorURL"].startswith("http"), "relative, joined to externalURL"


DATADOG_KEYS = {"body", "last_updated", "event_type", "title", "severity", "alert_type",
                "alert_query", "alert_transition", "date", "scopes", "org", "url", "tags", "id",
                "monitor_id"}


def datadog(body: dict) -> None:
    """The JSON template Keep installs in Datadog."""
    assert set(body) == DATADOG_KEYS, sorted(set(body) ^ DATADOG_KEYS)
    assert re.fullmatch(r"\d{13}", body["last_updated"]), "epoch milliseconds"
    assert body["date"] == body["last_updated"]
    assert body["severity"] in ("P1", "P2", "P3", "P4", "P5")
    assert body["alert_transition"] in ("Triggered", "Recovered")
    assert body["title"].startswith(f"[{body['alert_transition']} on ")
    assert body["id"].isdigit() and body["monitor_id"].isdigit()
    assert "monitor" in body["tags"].split(","), "Keep fails tags without a 'monitor' entry"
    assert all(":" in t for t in body["tags"].split(",") if t != "monitor")
    assert body["scopes"] and all(body["scopes"].split(","))
    assert set(body["org"]) == {"id", "name"}
    assert body["body"].startswith("%%%\n") and "[![Metric Graph](" in body["body"]
    assert "The monitor was last triggered at " in body["body"]


ZABBIX_KEYS = {"id", "triggerId", "lastReceived", "message", "name", "service", "severity",
               "status", "tags", "description", "time", "value", "host_ip", "host_name", "url",
               "update_action", "event_ack"}


def zabbix(body: dict) -> None:
    """The parameters of the webhook media type Keep installs in Zabbix."""
    assert set(body) == ZABBIX_KEYS, sorted(set(body) ^ ZABBIX_KEYS)
    assert all(isinstance(v, str) for v in body.values()), "the script posts strings"
    datetime.strptime(body["lastReceived"], "%Y.%m.%d %H:%M:%S")
    datetime.strptime(body["time"], "%H:%M:%S")
    assert body["severity"] in ("Not classified", "Information", "Warning", "Average", "High",
                                "Disaster")
    assert body["status"] in ("PROBLEM", "RESOLVED")
    tags = json.loads(body["tags"])
    assert all(set(t) == {"tag", "value"} for t in tags)
    assert any(t["tag"] == "environment" for t in tags)
    assert body["id"].isdigit() and body["triggerId"].isdigit()
    assert body["service"] == body["host_name"] and body["name"].endswith(body["service"])
    assert body["url"].startswith("http") and body["url"] != "{$ZABBIX.URL}"


KEEP_SEVERITIES = ("critical", "high", "warning", "info", "low")
KEEP_STATUSES = ("firing", "resolved", "acknowledged", "suppressed", "pending")


def keep(body) -> None:
    """A list of Keep AlertDto objects."""
    assert isinstance(body, list) and 1 <= len(body) <= 3
    for i, item in enumerate(body):
        where = f"[{i}]"
        assert isinstance(item.get("name"), str) and item["name"], f"{where}: name is required"
        assert isinstance(item.get("id"), str) and item["id"], f"{where}: a stable id"
        assert item["status"] in KEEP_STATUSES and item["severity"] in KEEP_SEVERITIES
        assert ISO.fullmatch(item["lastReceived"])
        assert isinstance(item["source"], list) and item["source"]
        _labels(item["labels"], where)
        assert "description_format" not in item
        if "fingerprint" in item:
            assert isinstance(item["fingerprint"], str) and len(item["fingerprint"]) <= 255


CHECKS = {"prometheus": prometheus, "grafana": grafana, "datadog": datadog, "zabbix": zabbix,
          "keep": keep}
