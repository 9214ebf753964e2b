"""Releasing alerts from maintenance: what a worker does with a release batch.

A window with `recover_previous_status` keeps the alerts it takes with status `maintenance` and
their own status in `previous_status`. Once no window holds such an alert any more, the
maintenance watcher (farm/maintenance/watcher.py) sends its stored current version back through
a worker in a release batch: a control batch `{"release_maintenance": [eventId, ...]}` whose
events are the stored documents, each with the eventId of the version it was read from. The
worker stores each with its status back (`release_alerts`) as a new version of its fingerprint:
deduplicated, given its firing timeline and correlated like any new version, but not enriched
again (the stored document already is) and not counted as received (it was, when it came).

The dedup call is guarded (farm/dedup.py RELEASE_LUA): a document whose fingerprint was stored
again after it was read (a newer notification, or this same release already) is skipped, so a
release never overwrites a newer version, and a release sent twice is stored once.
"""

from __future__ import annotations

from farm.alert import BOOKKEEPING_FIELDS
from farm.dedup import TIMELINE_FIELDS

# The control key of a release batch: the eventIds its events were read from, by position.
RELEASE = "release_maintenance"
HELD = "maintenance"

# What the stores add to a version (the engine's severityOrder, sentAt and duplicates), or the
# pipeline sets after the dedup decision: none of it is the alert's content, and each is set
# again when the released version is stored.
_STORED_ONLY = BOOKKEEPING_FIELDS | frozenset(TIMELINE_FIELDS) | {
    "incident", "duplicates", "sentAt", "severityOrder", "previous_status"}


def is_held(doc: dict) -> bool:
    """Whether a stored version is held in maintenance and knows the status to go back to."""
    return doc.get("status") == HELD and isinstance(doc.get("previous_status"), str) \
        and doc["previous_status"] != HELD


def released(doc: dict) -> dict:
    """The alert a held stored version becomes when released: its content with the status it
    came with, without the fields the store and the pipeline set."""
    alert = {key: value for key, value in doc.items() if key not in _STORED_ONLY}
    alert["status"] = doc["previous_status"]
    return alert


def release_alerts(events: list, expected: object) -> tuple[list[dict], list[str], int]:
    """The alerts of a release batch and the eventId each must have been stored by; the third
    value counts the events that are not a held stored version (left alone)."""
    alerts: list[dict] = []
    expect: list[str] = []
    if not isinstance(expected, list) or len(expected) != len(events):
        return alerts, expect, len(events)
    for event, event_id in zip(events, expected, strict=True):
        if isinstance(event, dict) and isinstance(event_id, str) and event_id \
                and isinstance(event.get("fingerprint"), str) and is_held(event):
            alerts.append(released(event))
            expect.append(event_id)
    return alerts, expect, len(events) - len(alerts)
