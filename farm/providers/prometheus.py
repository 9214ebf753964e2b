"""Prometheus Alertmanager webhooks (v4) and bare alerts, mapped as Keep's PrometheusProvider does.

KEEP_SEMANTICS 5.1. Deliberate differences: an alert with an `id` key keeps it (Keep fails the
event); an alert with neither id nor alertname gets a stable id derived from its labels (Keep
invents a random uuid, which would make a redelivered batch differ).
"""

from __future__ import annotations

import orjson

from farm.alert import new_alert, sha256_hex
from farm.providers.errors import BadEvent

SEVERITIES = {"critical": "critical", "error": "high", "high": "high", "warning": "warning",
              "medium": "warning", "info": "info", "low": "low"}
STATUSES = {"firing": "firing", "resolved": "resolved"}
# Top-level extras Keep's AlertDto defaults to "" for this provider.
EMPTY_DEFAULTS = ("value", "instance", "job")


def normalize(event: dict, now: str) -> list[dict]:
    alerts = event.get("alerts")
    if alerts is None:
        alerts = [event]
    elif not isinstance(alerts, list):
        raise BadEvent("'alerts' must be a list of Alertmanager alerts")
    return [_alert(raw, now) for raw in alerts]


def _alert(raw: object, now: str) -> dict:
    if not isinstance(raw, dict):
        raise BadEvent(f"an Alertmanager alert must be a map, got {type(raw).__name__}")
    rest = dict(raw)
    raw_labels = rest.pop("labels", None) or {}
    raw_annotations = rest.pop("annotations", None) or {}
    if not isinstance(raw_labels, dict) or not isinstance(raw_annotations, dict):
        raise BadEvent("'labels' and 'annotations' must be maps")

    alert_id = rest.pop("id", None) or raw_labels.get("alertname")
    if not alert_id:
        alert_id = "alert-" + sha256_hex(orjson.dumps(raw_labels, option=orjson.OPT_SORT_KEYS)
                                         .decode())[:16]
    alert_id = str(alert_id)

    labels = {str(k).lower(): v for k, v in raw_labels.items()}
    annotations = {str(k).lower(): v for k, v in raw_annotations.items()}
    description = annotations.pop("description", None) or annotations.get("summary") or alert_id
    status = rest.pop("state", None) or rest.pop("status", None)
    rest.pop("status", None)
    fingerprint = rest.pop("fingerprint", None)

    alert = new_alert(alert_id, now)
    alert["id"] = alert_id
    alert["description"] = description
    alert["status"] = STATUSES.get(status, "firing")
    alert["severity"] = SEVERITIES.get(labels.get("severity"), "info")
    alert["environment"] = labels.pop("environment", "unknown")
    alert["service"] = labels.get("service") or annotations.get("service")
    alert["source"] = ["prometheus"]
    alert["labels"] = labels
    alert["annotations"] = annotations
    alert["payload"] = rest
    alert["fingerprint"] = str(fingerprint) if fingerprint else sha256_hex(alert_id)
    for key, value in rest.items():
        if alert.get(key) is None:
            alert[key] = value
    for key, value in labels.items():
        if alert.get(key) is None:
            alert[key] = value
    for key in EMPTY_DEFAULTS:
        if alert.get(key) is None:
            alert[key] = ""
    return alert
