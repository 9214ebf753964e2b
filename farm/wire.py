"""Wire format v1: one batch is one msgpack map (see docs/architecture.md, "Batch envelope").

    {"v": 1, "id": <uuid4 hex>, "tenant": "default", "provider": "prometheus",
     "sent_at": <unix seconds>, "events": [<raw provider event>, ...]}
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any, NamedTuple

import msgpack

WIRE_VERSION = 1
PROVIDERS = ("prometheus", "grafana", "datadog", "zabbix", "keep")
# A batch id is part of every eventId (`<batch id>:<n>`, a store's document id: at most 512
# bytes in Elasticsearch/OpenSearch), of a Redis key and of every history row, so it is short
# and plain: a uuid4 (hex or dashed) fits, a ':' would make the eventId ambiguous.
BATCH_ID_MAX = 128
_BATCH_ID = re.compile(rf"[A-Za-z0-9._-]{{1,{BATCH_ID_MAX}}}")


class BadBatch(Exception):
    """The batch cannot be decoded or validated; the message says why, for the dead-letter list."""


class Batch(NamedTuple):
    id: str
    tenant: str
    provider: str
    sent_at: float
    events: list
    # Optional: Keep's `provider_id` and `fingerprint` query parameters, as the ingest gateway
    # received them; a fingerprint here overrides every alert's (Keep's __internal_prepartion).
    provider_id: str | None = None
    fingerprint: str | None = None
    # Optional: a command for the workers instead of events, e.g. {"resolve_incident": <id>}
    # from `farm incidents resolve` (farm/correlation/stage.py), or {"release_maintenance":
    # [eventId, ...]} from the maintenance watcher, its events the stored versions to release
    # (farm/maintenance/release.py).
    control: dict | None = None


def encode_batch(events: list[Any], provider: str, tenant: str = "default",
                 batch_id: str | None = None, sent_at: float | None = None,
                 provider_id: str | None = None, fingerprint: str | None = None) -> bytes:
    """Pack events of one provider into a wire-v1 batch (the two optional keys only when
    given)."""
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; known: {', '.join(PROVIDERS)}")
    if batch_id is not None and not _BATCH_ID.fullmatch(batch_id):
        raise ValueError(f"bad batch id {_shown(batch_id)}: 1 to {BATCH_ID_MAX} characters of "
                         f"A-Z a-z 0-9 . _ -")
    envelope = {
        "v": WIRE_VERSION,
        "id": uuid.uuid4().hex if batch_id is None else batch_id,
        "tenant": tenant,
        "provider": provider,
        "sent_at": time.time() if sent_at is None else sent_at,
        "events": events,
    }
    if provider_id:
        envelope["provider_id"] = provider_id
    if fingerprint:
        envelope["fingerprint"] = fingerprint
    return msgpack.packb(envelope)


def decode_batch(raw: bytes) -> Batch:
    """Unpack and validate a batch. Raises BadBatch naming the first problem found."""
    try:
        env = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise BadBatch(f"not msgpack: {type(exc).__name__}: {exc}") from None
    if not isinstance(env, dict):
        raise BadBatch(f"envelope is a {type(env).__name__}, not a map")
    version = env.get("v")
    if type(version) is not int or version != WIRE_VERSION:  # neither 1.0 nor true
        raise BadBatch(f"wire version {_shown(version)} is not supported "
                       f"(this farm reads the integer {WIRE_VERSION})")
    batch_id = env.get("id")
    if batch_id is None:
        raise BadBatch("missing batch id ('id')")
    if not isinstance(batch_id, str) or not _BATCH_ID.fullmatch(batch_id):
        raise BadBatch(f"bad batch id {_shown(batch_id)}: 'id' must be 1 to {BATCH_ID_MAX} "
                       f"characters of A-Z a-z 0-9 . _ - (a uuid4 hex fits)")
    tenant = env.get("tenant", "default")
    if not isinstance(tenant, str) or not tenant or ":" in tenant:
        raise BadBatch(f"bad tenant {tenant!r} (a non-empty string without ':')")
    provider = env.get("provider")
    if provider not in PROVIDERS:
        raise BadBatch(f"unknown provider {provider!r}; known: {', '.join(PROVIDERS)}")
    sent_at = env.get("sent_at")
    if isinstance(sent_at, bool) or not isinstance(sent_at, (int, float)):
        raise BadBatch(f"'sent_at' must be unix seconds, got {sent_at!r}")
    events = env.get("events")
    if not isinstance(events, list):
        raise BadBatch("'events' must be a list")
    provider_id, fingerprint = env.get("provider_id"), env.get("fingerprint")
    for name, value in (("provider_id", provider_id), ("fingerprint", fingerprint)):
        if value is not None and not isinstance(value, str):
            raise BadBatch(f"'{name}' must be a string, got {value!r}")
    control = env.get("control")
    if control is not None and not isinstance(control, dict):
        raise BadBatch(f"'control' must be a map, got {control!r}")
    return Batch(batch_id, tenant, provider, float(sent_at), events, provider_id or None,
                 fingerprint or None, control)


def peek_batch_id(raw: bytes) -> str | None:
    """Best-effort batch id of possibly broken bytes, for dead-letter records: a string id,
    cut to BATCH_ID_MAX characters (the letter's payload keeps it whole)."""
    try:
        env = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception:
        return None
    batch_id = env.get("id") if isinstance(env, dict) else None
    return batch_id[:BATCH_ID_MAX] if isinstance(batch_id, str) else None


def _shown(value: object) -> str:
    """A value for a one-line reason: its repr, cut short (an id may be megabytes long)."""
    text = repr(value)
    if len(text) <= 60:
        return text
    size = f"{len(value):,} characters" if isinstance(value, str) else type(value).__name__
    return f"{text[:40]}... ({size})"
