"""Keep's generic alert format (an AlertDto as JSON), KEEP_SEMANTICS 5.5 and 1.1.

Every key is kept; Keep's field validators are applied. Deliberate difference: an alert without
`id` gets its name as id (Keep invents a random uuid, so identical re-sends never deduplicate).
"""

from __future__ import annotations

from farm.alert import keep_url, normalize_time, severity_of, sha256_hex, status_of
from farm.providers.errors import BadEvent


def normalize(event: dict | list, now: str) -> list[dict]:
    if isinstance(event, list):
        return [alert for item in event for alert in normalize(item, now)]
    return [_alert(event, now)]


def _alert(event: dict, now: str) -> dict:
    if not isinstance(event, dict):
        raise BadEvent(f"a Keep alert must be a map, got {type(event).__name__}")
    alert = dict(event)
    alert.pop("deletedAt", None)
    name = alert.get("name")
    if not name:
        name = alert.get("id") or "unknown alert name"
    name = str(name)
    alert["name"] = name
    if not alert.get("id"):
        alert["id"] = name
    alert["status"] = status_of(alert.get("status"))
    alert["severity"] = severity_of(alert.get("severity"))
    alert["lastReceived"] = normalize_time(alert.get("lastReceived"), now)
    source = alert.get("source")
    if isinstance(source, str):
        source = [source]
    alert["source"] = source if isinstance(source, list) and source else ["keep"]
    labels = alert.get("labels")
    if labels is None:
        labels = {}
    if not isinstance(labels, dict):
        raise BadEvent("'labels' must be a map of strings")
    alert["labels"] = labels
    for field in ("url", "imageUrl"):
        if field in alert:
            alert[field] = keep_url(alert[field])
    fmt = alert.get("description_format")
    if fmt is not None and fmt not in ("markdown", "html"):
        raise BadEvent(f"description_format must be 'markdown' or 'html', got {fmt!r}")
    fingerprint = alert.get("fingerprint")
    alert["fingerprint"] = str(fingerprint)[:255] if fingerprint else sha256_hex(name)
    for field in ("firingStartTime", "environment", "service", "message", "description",
                  "providerId"):
        alert.setdefault(field, None)
    alert.setdefault("url", None)
    alert.setdefault("imageUrl", None)
    return alert
