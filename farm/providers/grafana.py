"""Grafana webhooks, unified alerting and legacy, mapped as Keep's GrafanaProvider does.

docs/keep-compatibility.md#grafana. A notification with `evalMatches` is a legacy alert (one alert);
otherwise each of `alerts[]` is one alert. Name and status come from the notification, not the alert
([quirk] kept: this is what Keep users see and search for).

Deliberate differences: an alert without `fingerprint` gets the computed fingerprint as its id
(Keep invents a random uuid); a legacy alert without `ruleId` is fingerprinted by its name; a
notification with neither `alerts` nor `evalMatches` is unreadable (Keep silently yields no
alert), so it is dead-lettered instead of vanishing.
"""

from __future__ import annotations

import json
from functools import lru_cache
from urllib.parse import urljoin

from farm.alert import keep_url, new_alert, sha256_hex, spread
from farm.providers.errors import BadEvent

SEVERITIES = {"critical": "critical", "high": "high", "warning": "warning", "info": "info"}
STATUSES = {"ok": "resolved", "resolved": "resolved", "normal": "resolved",
            "paused": "suppressed", "alerting": "firing", "pending": "pending",
            "no_data": "pending"}


def normalize(event: dict, now: str) -> list[dict]:
    if not isinstance(event, dict):
        raise BadEvent(f"a Grafana notification must be a map, got {type(event).__name__}")
    if "evalMatches" in event:
        return [_legacy(event, now)]
    if "alerts" not in event:
        raise BadEvent("a Grafana notification holds 'alerts' (unified alerting) or "
                       "'evalMatches' (legacy alerting), this one neither")
    alerts = event["alerts"]
    if not isinstance(alerts, list):
        raise BadEvent("'alerts' must be a list of Grafana alerts")
    if not alerts:
        return []  # a notification about no alert: the pipeline counts it as an empty event
    title = event.get("title")
    if title is None:
        raise BadEvent("a Grafana notification without 'title' has no alert name "
                       "(Keep rejects it too)")
    status = STATUSES.get(event.get("status"), "firing")
    external_url = event.get("externalURL")
    return [_alert(raw, str(title), status, external_url, now) for raw in alerts]


def fingerprint_of(raw: dict, labels: dict) -> str:
    """Keep's calculate_fingerprint: the alert's own, the label's, a hash of the labels as
    sent (insertion order), or a hash of alertname + service."""
    own = raw.get("fingerprint")
    if own:
        return str(own)[:255]  # AlertDto keeps at most 255 characters of a given fingerprint
    from_label = labels.get("fingerprint")
    if from_label:
        return str(from_label)[:255]
    if labels:
        try:
            return sha256_hex(json.dumps(labels))
        except (TypeError, ValueError):
            pass  # unserialisable labels: Keep falls back as below
    service = raw.get("service", labels.get("service", "unknown"))
    return sha256_hex(f"{raw.get('alertname', '')}{service}")


def _resolve(url: object, external_url: object) -> str | None:
    if not url or not isinstance(url, str):
        return None
    if url.startswith(("http://", "https://")):
        return url
    if not external_url or not isinstance(external_url, str):
        return None
    return _join(external_url, url)


# A rule's URLs repeat with every notification, and urljoin is the costliest step here.
_join = lru_cache(maxsize=16_384)(urljoin)


def _alert(raw: object, title: str, status: str, external_url: object, now: str) -> dict:
    if not isinstance(raw, dict):
        raise BadEvent(f"a Grafana alert must be a map, got {type(raw).__name__}")
    labels = raw.get("labels") or {}
    annotations = raw.get("annotations") or {}
    if not isinstance(labels, dict) or not isinstance(annotations, dict):
        raise BadEvent("'labels' and 'annotations' must be maps")
    fingerprint = fingerprint_of(raw, labels)

    alert = new_alert(title, now)
    alert["id"] = str(raw.get("fingerprint") or fingerprint)
    alert["fingerprint"] = fingerprint
    alert["status"] = status
    alert["severity"] = SEVERITIES.get(labels.get("severity"), "info")
    alert["environment"] = labels.get("deployment_environment",
                                      labels.get("environment", "unknown"))
    alert["description"] = annotations.get("description") or annotations.get("summary", "")
    alert["source"] = ["grafana"]
    alert["labels"] = labels
    alert["url"] = keep_url(_resolve(raw.get("generatorURL"), external_url))
    alert["imageUrl"] = _resolve(raw.get("imageURL"), external_url)
    alert["dashboardUrl"] = raw.get("dashboardURL", "")
    alert["panelUrl"] = raw.get("panelURL", "")
    alert["silenceURL"] = raw.get("silenceURL", "")
    alert["valueString"] = raw.get("valueString", "")
    alert["value"] = ""
    alert["datasource"] = ""
    if annotations:
        alert["annotations"] = annotations
    values = raw.get("values")
    if values:
        alert["values"] = values
    spread(alert, labels)
    return alert


def _legacy(event: dict, now: str) -> dict:
    rule_id = event.get("ruleId")
    rule_id = "" if rule_id is None else str(rule_id)
    name = str(event.get("ruleName", ""))
    alert = new_alert(name, now)
    alert["id"] = rule_id or name
    alert["fingerprint"] = rule_id or sha256_hex(name)
    alert["status"] = "firing" if event.get("state") == "alerting" else "resolved"
    alert["severity"] = "critical"
    alert["description"] = event.get("message", "")
    alert["source"] = ["grafana"]
    alert["labels"] = {
        "metric": event.get("metric", ""),
        "ruleId": rule_id,
        "ruleName": event.get("ruleName", ""),
        "ruleUrl": event.get("ruleUrl", ""),
        "state": event.get("state", ""),
    }
    return alert
