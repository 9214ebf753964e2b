"""Prometheus Alertmanager webhooks (v4) and bare alerts, mapped as Keep's PrometheusProvider does.

docs/keep-compatibility.md#prometheus. Only `alerts[]` is read; a map without `alerts` is one bare
alert (also the shape of Prometheus' own /api/v1/alerts, which says `state` instead of `status`).

Deliberate differences: an alert with an `id` key keeps it (Keep fails the event); an alert with
neither id nor alertname gets a stable id derived from its labels (Keep invents a random uuid,
which would make a redelivered batch differ); an empty `fingerprint` counts as absent.
"""

from __future__ import annotations

import orjson

from farm.alert import NOT_NONE_DEFAULTS, keep_url, sha256_hex
from farm.providers.errors import BadEvent

SEVERITIES = {"critical": "critical", "error": "high", "high": "high", "warning": "warning",
              "medium": "warning", "info": "info", "low": "low"}
STATUSES = {"firing": "firing", "resolved": "resolved"}
# Top-level extras Keep sets to "" when absent, so templates can name them safely.
EMPTY_DEFAULTS = ("value", "instance", "job")
# Set explicitly below; a leftover key of the same name must not replace them (Keep would fail
# the event on the duplicate keyword).
_OWN_FIELDS = frozenset({"id", "name", "description", "status", "service", "lastReceived",
                         "environment", "severity", "source", "labels", "annotations",
                         "payload", "fingerprint"})


def normalize(event: dict, now: str) -> list[dict]:
    if not isinstance(event, dict):
        raise BadEvent(f"an Alertmanager webhook must be a map, got {type(event).__name__}")
    alerts = event.get("alerts", None)
    if alerts is None:
        return [_alert(event, now)]
    if not isinstance(alerts, list):
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

    given_id = rest.pop("id", None)
    alertname = raw_labels.get("alertname")
    name = str(alertname or given_id or "")
    if not name:
        name = "alert-" + sha256_hex(orjson.dumps(raw_labels, option=orjson.OPT_SORT_KEYS,
                                                  default=str).decode())[:16]
    alert_id = str(given_id) if given_id else name

    # Keep takes the description out of the annotations as sent (case-sensitive key), before
    # it lower-cases them, and falls back to the summary only when that key is absent.
    description = raw_annotations.get("description") or raw_annotations.get("summary",
                                                                             alert_id)
    labels = {k.lower(): v for k, v in raw_labels.items()}
    annotations = {k.lower(): v for k, v in raw_annotations.items() if k != "description"}
    state = rest.pop("state", None)
    status = rest.pop("status", None)
    fingerprint = rest.pop("fingerprint", None)

    alert = {
        "id": alert_id,
        "name": name,
        "status": STATUSES.get(state or status, "firing"),
        "severity": SEVERITIES.get(labels.get("severity"), "info"),
        "lastReceived": now,
        "firingStartTime": None,
        "environment": labels.pop("environment", "unknown"),
        "service": labels.get("service", annotations.get("service")),
        "source": ["prometheus"],
        "message": None,
        "description": description,
        "url": None,
        "imageUrl": None,
        "labels": labels,
        "fingerprint": str(fingerprint)[:255] if fingerprint else sha256_hex(name),
        "providerId": None,
        "providerType": None,
        "annotations": annotations,
        "payload": rest,
    }
    for key, value in rest.items():
        if key not in _OWN_FIELDS:
            alert[key] = keep_url(value) if key == "url" else value
    # Each label becomes a field unless one is set (farm.alert.spread, inlined: hot path).
    for key, value in labels.items():
        if alert.get(key) is None and key not in NOT_NONE_DEFAULTS:
            alert[key] = value
    for key in EMPTY_DEFAULTS:
        if alert.get(key) is None:
            alert[key] = ""
    return alert
