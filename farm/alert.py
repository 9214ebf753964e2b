"""The canonical alert: Keep's AlertDto field names and values, and the helpers every provider uses.

An alert is a plain dict (the hot path builds millions of them; a class would cost more than it
explains). `new_alert` gives the Keep fields with Keep's defaults; providers fill them and may add
extra keys, exactly as Keep's AlertDto keeps extra attributes.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from urllib.parse import quote

SEVERITY_ORDER = {"critical": 5, "high": 4, "warning": 3, "info": 2, "low": 1}
SEVERITY_BY_ORDER = {v: k for k, v in SEVERITY_ORDER.items()}
STATUSES = ("firing", "resolved", "acknowledged", "suppressed", "pending")

# farm's own fields: never part of the dedup hash (KEEP_SEMANTICS, differences).
BOOKKEEPING_FIELDS = frozenset({"eventId", "batchId", "tenant", "receivedAt", "processedAt"})


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


def iso_ms(ts: float) -> str:
    """Unix seconds -> 'YYYY-MM-DDTHH:MM:SS.mmmZ' (UTC), Keep's lastReceived form."""
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def normalize_time(value: object, now: str) -> str:
    """Keep's lastReceived normalisation (KEEP_SEMANTICS 1.4).

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
        text = value[:-1] if value.endswith("Z") else value
        try:
            return _from_epoch(float(text), now)
        except ValueError:
            return now
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


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
    return value if isinstance(value, str) and value in STATUSES else "firing"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


_URL_SAFE = "/:?=&%#"
_BARE_PERCENT = re.compile(r"%(?![0-9a-fA-F]{2})")


def keep_url(value: object) -> str | None:
    """AlertDto's url pre-validator: trim, empty -> None, default to https://, quote."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if not text.startswith("http"):
        text = "https://" + text
    return quote(_BARE_PERCENT.sub("%25", text), safe=_URL_SAFE)
