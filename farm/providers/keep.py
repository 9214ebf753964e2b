"""Keep's generic alert format (an AlertDto as JSON, one or a list),
docs/keep-compatibility.md#keep-generic and docs/keep-compatibility.md#alert-model.

Every key is kept; Keep's field validators are applied. farm treats every `keep` batch as Keep's
`/alerts/event/keep` endpoint (provider formatting, so fingerprint rules apply: keephq/keep#6793).

Deliberate differences: an alert without `id` gets its name as id (Keep invents a random uuid,
so identical re-sends never deduplicate); an unreadable lastReceived becomes the ingestion time
(Keep fails the event); an empty `fingerprint` counts as absent; `labels: null` becomes {}.
"""

from __future__ import annotations

from datetime import UTC, datetime

from farm.alert import keep_url, normalize_time, severity_of, sha256_hex, status_of
from farm.providers.errors import BadEvent

# Keep's defaults for the fields every farm alert carries (see farm.alert.new_alert).
_DEFAULT_NONE = ("firingStartTime", "environment", "service", "message", "description", "url",
                 "imageUrl", "providerId", "providerType")


def normalize(event: dict | list, now: str) -> list[dict]:
    """One alert per map; a list is Keep's list body, so each item must be a map (an empty list
    holds no alert, as in Keep)."""
    if isinstance(event, list):
        return [_alert(item, now) for item in event]
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
    alert["id"] = str(alert["id"]) if alert.get("id") else name
    alert["status"] = status_of(alert.get("status"))
    alert["severity"] = severity_of(alert.get("severity"))
    raw_received = alert.get("lastReceived")
    received = normalize_time(raw_received, now)
    alert["lastReceived"] = received
    source = alert.get("source")
    if isinstance(source, str):
        source = [source]
    alert["source"] = source if isinstance(source, list) and source else ["keep"]
    labels = alert.get("labels")
    if labels is None:
        labels = {}
    if not isinstance(labels, dict):
        raise BadEvent("'labels' must be a map")
    alert["labels"] = labels
    if "url" in alert:
        alert["url"] = keep_url(alert["url"])
    fmt = alert.get("description_format")
    if fmt is not None and fmt not in ("markdown", "html"):
        raise BadEvent(f"description_format must be 'markdown' or 'html', got {fmt!r}")
    assignees = alert.pop("assignees", None)
    if isinstance(assignees, dict) and assignees:
        # Keep looks the assignee up by the lastReceived as sent.
        alert["assignee"] = assignees.get(raw_received if raw_received else now)
    if isinstance(alert.get("deleted"), list):
        alert["deleted"] = received in alert["deleted"]
    if "dismissed" in alert:
        alert["dismissed"] = _dismissed(alert["dismissed"], alert.get("dismissUntil"), now)
    fingerprint = alert.get("fingerprint")
    alert["fingerprint"] = str(fingerprint)[:255] if fingerprint else sha256_hex(name)
    for field in _DEFAULT_NONE:
        alert.setdefault(field, None)
    return alert


def _dismissed(value: object, until: object, now: str) -> object:
    """Keep's dismissed validator: "true"/"false" strings are booleans; a dismissal whose
    dismissUntil has passed (at ingestion time) is over."""
    if isinstance(value, str):
        value = value.lower() == "true"
    if not value or not until or until == "forever":
        return value
    try:
        end = datetime.strptime(str(until), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        raise BadEvent(f"dismissUntil {until!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ "
                       f"or 'forever'") from None
    return datetime.fromisoformat(now.replace("Z", "+00:00")) < end
