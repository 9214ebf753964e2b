"""The canonical alert: Keep's AlertDto field names and values, and the helpers every provider uses.

An alert is a plain dict (the hot path builds millions of them; a class would cost more than it
explains). `new_alert` gives the Keep fields with Keep's defaults; providers fill them and may add
extra keys, exactly as Keep's AlertDto keeps extra attributes.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from functools import lru_cache
from json.encoder import encode_basestring_ascii
from urllib.parse import quote

SEVERITY_ORDER = {"critical": 5, "high": 4, "warning": 3, "info": 2, "low": 1}
SEVERITY_BY_ORDER = {v: k for k, v in SEVERITY_ORDER.items()}
# `maintenance` is Keep's status for alerts inside a maintenance window (recover_previous_status).
STATUSES = ("firing", "resolved", "acknowledged", "suppressed", "pending", "maintenance")
_STATUS_SET = frozenset(STATUSES)

def json_default(value: object) -> object:
    """How a value JSON has no type for is written, wherever farm encodes an alert (the dedup
    digest, both stores): bytes as their UTF-8 text, anything else as str()."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


# farm's own fields: never part of the dedup hash (docs/keep-compatibility.md#full-or-partial).
BOOKKEEPING_FIELDS = frozenset({"eventId", "batchId", "tenant", "receivedAt", "processedAt"})

# AlertDto fields farm's documents do not carry, at Keep's defaults. A field-list fingerprint
# reads them as Keep's `alert.dict()` would have them.
ABSENT_DEFAULTS: dict[str, object] = {
    "firingStartTimeSinceLastResolved": None, "firingCounter": 0, "unresolvedCounter": 0,
    "isFullDuplicate": False, "isPartialDuplicate": False, "duplicateReason": None,
    "apiKeyRef": None, "description_format": None, "pushed": False, "event_id": None,
    "deleted": False, "dismissUntil": None, "dismissed": False, "assignee": None, "note": None,
    "startedAt": None, "isNoisy": False, "enriched_fields": [], "incident": None,
}
# AlertDto fields whose default is not None: Keep never copies a label over them.
NOT_NONE_DEFAULTS = frozenset(k for k, v in ABSENT_DEFAULTS.items() if v is not None)


def new_alert(name: str, now: str) -> dict:
    """A dict with Keep's AlertDto fields at their defaults; `now` is the ingestion time (ISO)."""
    return {
        "id": None,
        "name": name,
        "status": "firing",
        "severity": "info",
        "lastReceived": now,
        "firingStartTime": None,
        "environment": None,
        "service": None,
        "source": [],
        "message": None,
        "description": None,
        "url": None,
        "imageUrl": None,
        "labels": {},
        "fingerprint": None,
        "providerId": None,
        "providerType": None,
    }


def spread(alert: dict, extras: dict) -> None:
    """Copy each extra onto the alert where the alert's value is still None, as Keep's providers
    do with `setattr` for labels (an AlertDto field with a non-None default is never replaced)."""
    for key, value in extras.items():
        if alert.get(key) is None and key not in NOT_NONE_DEFAULTS:
            alert[key] = value


def iso_ms(ts: float) -> str:
    """Unix seconds -> 'YYYY-MM-DDTHH:MM:SS.mmmZ' (UTC), Keep's lastReceived form."""
    # isoformat truncates to milliseconds, as Keep's strftime("%f")[:-3] does.
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def iso_of(dt: datetime) -> str:
    """A datetime -> Keep's lastReceived form; a naive one is taken as UTC (Keep takes the
    server's local zone, a quirk farm fixes)."""
    if dt.tzinfo is None:
        return dt.isoformat(timespec="milliseconds") + "Z"
    return dt.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def normalize_time(value: object, now: str) -> str:
    """Keep's lastReceived normalisation (docs/keep-compatibility.md#last-received).

    ISO 8601 with any offset -> UTC ms+Z; a naive ISO time is taken as UTC (Keep uses the server's
    local zone, a quirk farm fixes); else a number (optionally with a trailing Z) is epoch
    seconds; empty or unparseable values become `now`, as Keep's pipeline does at save time.
    """
    if value is None or value == "":
        return now
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _from_epoch(float(value), now)
    if not isinstance(value, str):
        return now
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        text = value.rstrip("Z")
        try:
            return _from_epoch(float(text), now)
        except ValueError:
            return now
    return iso_of(dt)


def _from_epoch(seconds: float, now: str) -> str:
    try:
        return iso_ms(seconds)
    except (OverflowError, OSError, ValueError):
        return now


def severity_of(value: object) -> str:
    """AlertSeverity validation: an enum value, or an order 1..5; anything else is info."""
    if isinstance(value, str) and value in SEVERITY_ORDER:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value in SEVERITY_BY_ORDER:
        return SEVERITY_BY_ORDER[value]
    return "info"


def status_of(value: object) -> str:
    """AlertStatus validation: an enum value, anything else is firing."""
    return value if isinstance(value, str) and value in _STATUS_SET else "firing"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def split_fields(fields: list[str]) -> list[tuple[str, ...]]:
    """Dotted field names -> key paths, once, for `fields_fingerprint`."""
    return [tuple(field.split(".")) for field in fields]


def fields_fingerprint(alert: dict, paths: list[tuple[str, ...]]) -> str:
    """Keep's field-list fingerprint (docs/keep-compatibility.md#fingerprinting): one SHA-256 fed
    each field's value in order; lists and maps as `json.dumps` (Python's default separators,
    unsorted), the rest as `str()`, missing paths skipped, no separator between values."""
    hasher = hashlib.sha256()
    for path in paths:
        head = path[0]
        value = alert[head] if head in alert else ABSENT_DEFAULTS.get(head)
        for key in path[1:]:
            value = value.get(key) if isinstance(value, dict) else None
            if value is None:
                break
        if value is None:
            continue
        if isinstance(value, (list, dict)):
            value = python_json(value)
        hasher.update(str(value).encode())
    return hasher.hexdigest()


def python_json(value: object) -> str:
    """`json.dumps(value)` with Python's defaults, exactly; a list of strings (Datadog's groups)
    takes a short cut through the same C string encoder."""
    if type(value) is list and all(type(item) is str for item in value):
        return "[" + ", ".join(map(encode_basestring_ascii, value)) + "]"
    return json.dumps(value)


_URL_SAFE = "/:?=&%#"
_BARE_PERCENT = re.compile(r"%(?![0-9a-fA-F]{2})")


def keep_url(value: object) -> str | None:
    """AlertDto's url pre-validator: trim, empty -> None, default to https://, quote."""
    if value is None:
        return None
    return _keep_url(value if isinstance(value, str) else str(value))


@lru_cache(maxsize=16_384)  # the same URLs come back with every notification of a rule
def _keep_url(value: str) -> str | None:
    text = value.strip()
    if not text:
        return None
    if not text.startswith("http"):
        text = "https://" + text
    return quote(_BARE_PERCENT.sub("%25", text), safe=_URL_SAFE)
