"""Wire format v1: one batch is one msgpack map (see docs/architecture.md, "Batch envelope").

    {"v": 1, "id": <uuid4 hex>, "tenant": "default", "provider": "prometheus",
     "sent_at": <unix seconds>, "events": [<raw provider event>, ...]}
"""

from __future__ import annotations

import time
import uuid
from typing import Any, NamedTuple

import msgpack

WIRE_VERSION = 1
PROVIDERS = ("prometheus", "grafana", "datadog", "zabbix", "keep")


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


def encode_batch(events: list[Any], provider: str, tenant: str = "default",
                 batch_id: str | None = None, sent_at: float | None = None,
                 provider_id: str | None = None, fingerprint: str | None = None) -> bytes:
    """Pack events of one provider into a wire-v1 batch (the two optional keys only when
    given)."""
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; known: {', '.join(PROVIDERS)}")
    envelope = {
        "v": WIRE_VERSION,
        "id": batch_id or uuid.uuid4().hex,
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
    if version != WIRE_VERSION:
        raise BadBatch(f"wire version {version!r} is not supported "
                       f"(this farm reads {WIRE_VERSION})")
    batch_id = env.get("id")
    if not isinstance(batch_id, str) or not batch_id:
        raise BadBatch("missing batch id ('id' must be a non-empty string)")
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
    return Batch(batch_id, tenant, provider, float(sent_at), events, provider_id or None,
                 fingerprint or None)


def peek_batch_id(raw: bytes) -> str | None:
    """Best-effort batch id of possibly broken bytes, for dead-letter records."""
    try:
        env = msgpack.unpackb(raw, raw=False, strict_map_key=False)
        return env.get("id") if isinstance(env, dict) else None
    except Exception:
        return None
