"""Alert batches pushed straight onto a farm's queue, as the gateway would push them."""

from __future__ import annotations

import msgpack

from farm.wire import encode_batch


def alertmanager_webhook(n: int, status: str = "firing") -> dict:
    """An Alertmanager webhook of one alert, unique for each n (its own fingerprint)."""
    return {"version": "4", "status": status, "receiver": "farm", "alerts": [{
        "status": status,
        "labels": {"alertname": f"Alert{n}", "instance": f"host-{n % 17}:9100",
                   "severity": ["critical", "warning", "info"][n % 3], "job": "node"},
        "annotations": {"summary": f"summary {n}", "description": f"description {n}"},
        "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph", "fingerprint": f"{n:016x}"}]}


def push_batches(redis, n_batches: int, per_batch: int, offset: int = 0) -> list[bytes]:
    """LPUSH n_batches wire batches of per_batch unique alerts onto farm:q:normal, the way the
    gateway does; returns the raw batches."""
    batches = []
    for b in range(n_batches):
        events = [alertmanager_webhook(offset + b * per_batch + i) for i in range(per_batch)]
        raw = encode_batch(events, "prometheus")
        redis.lpush("farm:q:normal", raw)
        batches.append(raw)
    return batches


def batch_ids(batches: list[bytes]) -> list[str]:
    """The id in each raw batch's envelope."""
    return [msgpack.unpackb(raw)["id"] for raw in batches]
