"""Datadog webhooks (the JSON template Keep installs), mapped as Keep's DatadogProvider does.

docs/keep-compatibility.md#datadog. One event is one alert. The fingerprint is Keep's field-list
fingerprint over ["groups", "monitor_id"].

Deliberate differences: a `tags` string without a bare "monitor" entry is read like any other
(Keep fails the event); a missing or unreadable `last_updated` becomes the ingestion time (Keep
fails the event); an event without `id` gets its name as id (Keep invents a random uuid);
`extra_details` reads the body's first BODY_PARSE_CHARS characters (Keep reads it all, in time
quadratic in a body of repeated link openings).
"""

from __future__ import annotations

import re

from farm.alert import fields_fingerprint, iso_ms, keep_url, new_alert, split_fields
from farm.providers.errors import BadEvent

SEVERITIES = {"P1": "critical", 1: "critical", "P2": "high", 2: "high",
              "P3": "warning", 3: "warning", "P4": "info", 4: "info"}
STATUSES = {"Triggered": "firing", "Recovered": "resolved", "Muted": "suppressed"}
FINGERPRINT_FIELDS = split_fields(["groups", "monitor_id"])

# The body's parse reads this many characters: a body is sender-controlled and up to the
# gateway's max_body, and the parse is per event.
BODY_PARSE_CHARS = 65_536
# Keep's patterns, `opening(.*?)closing`, as (field, opening, closing); `_between` finds them.
_SPANS = (("metric_graph_url", "[![Metric Graph](", ")]"),
          ("trigger_time", "The monitor was last triggered at ", "."),
          ("monitor_status_url", "[Monitor Status](", ")"),
          ("edit_monitor_url", "[Edit Monitor](", ")"),
          ("related_logs_url", "[Related Logs](", ")"))
_MENTION = re.compile(r"@(\S+)")


def normalize(event: dict, now: str) -> list[dict]:
    if not isinstance(event, dict):
        raise BadEvent(f"a Datadog webhook must be a map, got {type(event).__name__}")
    title = event.get("title")
    if title is None:
        raise BadEvent("a Datadog webhook without 'title' has no alert name "
                       "(Keep rejects it too)")
    name = str(title)
    tags, service = _tags(event.get("tags", ""))
    scopes = event.get("scopes", "")
    if not scopes:
        groups = ["*"]
    elif isinstance(scopes, list):
        groups = [str(scope) for scope in scopes]
    else:
        groups = str(scopes).split(",")
    body = event.get("body")
    details = extra_details(body)

    alert = new_alert(name, now)
    alert["id"] = str(event["id"]) if event.get("id") else name
    alert["status"] = STATUSES.get(event.get("alert_transition"), "firing")
    alert["severity"] = SEVERITIES.get(event.get("severity"), "info")
    alert["lastReceived"] = _last_updated(event.get("last_updated"), now)
    alert["source"] = ["datadog"]
    alert["message"] = body
    alert["description"] = event.get("message") or body
    alert["service"] = service
    alert["url"] = keep_url(event.get("url"))
    alert["imageUrl"] = details["imageUrl"]
    alert["groups"] = groups
    alert["tags"] = tags
    alert["monitor_id"] = event.get("monitor_id")
    alert["alert_query"] = event.get("alert_query")
    alert["extra_details"] = details
    alert["fingerprint"] = fields_fingerprint(alert, FINGERPRINT_FIELDS)
    return [alert]


def _tags(raw: object) -> tuple[object, object]:
    """$TAGS ("k:v,k:v,monitor") -> ({k: v}, tags.service), without the `monitor` tag."""
    tags = raw
    if isinstance(raw, str):
        tags = {}
        for entry in raw.split(","):
            key, sep, value = entry.partition(":")
            if sep:
                tags[key] = value
    if isinstance(tags, dict):
        tags = {k: v for k, v in tags.items() if k != "monitor"}
        return tags, tags.get("service")
    return tags, None


def _last_updated(raw: object, now: str) -> str:
    """$LAST_UPDATED is epoch milliseconds."""
    if isinstance(raw, bool) or raw is None:
        return now
    try:
        millis = int(raw)
    except (TypeError, ValueError):
        try:
            millis = float(raw)
        except (TypeError, ValueError):
            return now
    try:
        return iso_ms(millis / 1000)
    except (OverflowError, OSError, ValueError):
        return now


def extra_details(body: object) -> dict:
    """Keep's best-effort reading of the markdown body: links, trigger time, @mentions and the
    first line of the message, from the body's first BODY_PARSE_CHARS characters."""
    details = {"metric_graph_url": None, "metric_query": None, "trigger_time": None,
               "monitor_status_url": None, "edit_monitor_url": None, "related_logs_url": None,
               "alert_message": None, "mentioned_users": []}
    if not body:
        details["imageUrl"] = None
        return details
    if not isinstance(body, str):
        return {"imageUrl": None}  # Keep's parser fails here and keeps only this
    text = body.strip("%\n")[:BODY_PARSE_CHARS]
    for key, opening, closing in _SPANS:
        details[key] = _between(text, opening, closing)
    details["mentioned_users"] = _MENTION.findall(text)
    for line in text.split("\n"):
        if line and not line.startswith("%%%") and not line.startswith("@"):
            details["alert_message"] = line.strip()
            break
    details["imageUrl"] = details["metric_graph_url"]
    return details


def _between(text: str, opening: str, closing: str) -> str | None:
    """`re.search(escape(opening) + "(.*?)" + escape(closing), text).group(1)`, or None, in
    linear time: the regex retries every opening of a line without a closing and scans the rest
    of the line each time, quadratic in a body of repeated openings."""
    at = text.find(opening)
    while at >= 0:
        start = at + len(opening)
        line_end = text.find("\n", start)  # `.` stops at a newline
        if line_end < 0:
            line_end = len(text)
        end = text.find(closing, start, line_end)
        if end >= 0:
            return text[start:end]
        # Any later opening on this line has no closing after it either.
        at = text.find(opening, line_end)
    return None
