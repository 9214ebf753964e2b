"""One notification: a tag byte and a JSON object, as it sits in Redis and in the request body.

    b"a" + {"eventId": ..., "fingerprint": ..., ...}   a stored alert version
    b"i" + {...incident snapshot...}                  an incident created, updated or resolved

The sender joins entries into `{"alerts": [...], "incidents": [...]}` by their tag without
parsing them again. Hand-off for other stages: a stage that wants something notified appends
`incident_entry(snapshot)` (or `alert_entry`) to its batch's `Outcome.notifications`, as
Pipeline.collect_notifications does for the correlation step's snapshots; the worker pushes
that list in the atomic ack, so it is notified once, when the batch is committed.

An alert entry is the compact form below rather than the whole document: the list is bounded
by a count (`[notify] max_queue`), so its memory is that count times an entry's size, and a
provider's raw payload can be many kilobytes. Receivers that need the rest read the stored
document by eventId or fingerprint.
"""

from __future__ import annotations

import orjson

ALERT_TAG = b"a"
INCIDENT_TAG = b"i"

ALERT_FIELDS = (
    "eventId", "fingerprint", "tenant", "id", "name", "status", "severity", "previousStatus",
    "previousSeverity", "lastReceived", "firingStartTime", "firingStartTimeSinceLastResolved",
    "firingCounter", "unresolvedCounter", "startedAt", "environment", "service", "source",
    "description", "message", "url", "labels", "providerType", "providerId", "incident",
)
_DECISIONS = {"n": "new", "p": "partial"}


def _readable(value: object) -> object:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def alert_entry(alert: dict, decision: str) -> bytes:
    """The notification of one stored alert version; decision is its dedup letter (n or p)."""
    doc = {name: alert.get(name) for name in ALERT_FIELDS}
    doc["decision"] = _DECISIONS.get(decision, decision)
    return ALERT_TAG + orjson.dumps(doc, default=_readable)


def incident_entry(incident: dict) -> bytes:
    """The notification of one incident change: the incident's snapshot as stored."""
    return INCIDENT_TAG + orjson.dumps(incident, default=_readable)


def request_body(entries: list[bytes]) -> bytes:
    """The JSON body of one request, alerts and incidents each in the order taken."""
    alerts = [e[1:] for e in entries if e[:1] == ALERT_TAG]
    incidents = [e[1:] for e in entries if e[:1] == INCIDENT_TAG]
    return b'{"alerts":[' + b",".join(alerts) + b'],"incidents":[' + b",".join(incidents) + b"]}"


def counts(entries: list[bytes]) -> dict[str, int]:
    alerts = sum(1 for e in entries if e[:1] == ALERT_TAG)
    return {"alert": alerts, "incident": len(entries) - alerts}
