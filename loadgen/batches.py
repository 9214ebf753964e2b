"""Batching for the Redis target: one open batch per (provider, lane), closed when it holds
`max_events` wire events or `max_bytes` of payload, or when its first event has waited
`max_wait` seconds (so that low rates still see low latency).

A group always lands in the same (provider, lane), so the copies of one alert keep their
stream order across batches; a batch goes to the critical lane when any of its alerts is
critical.
"""

from __future__ import annotations

import time
from array import array

from loadgen.envelope import Envelope, batch_id
from loadgen.record import SendLog
from loadgen.stream import event_digest


class OpenBatch:
    __slots__ = ("provider", "lane", "events", "event_alerts", "keys", "payload_bytes",
                 "alerts", "notifications", "opened")

    def __init__(self, provider: str, lane: str):
        self.provider = provider
        self.lane = lane
        self.events: list[bytes] = []
        self.event_alerts = array("B")
        self.keys = array("Q")
        self.payload_bytes = 0
        self.alerts = 0
        self.notifications = 0
        self.opened = 0.0


class Closed:
    """A batch ready to push, with what the counters and the send log need."""

    __slots__ = ("lane", "data", "payload_bytes", "alerts", "notifications")

    def __init__(self, lane: str, data: bytes, payload_bytes: int, alerts: int,
                 notifications: int):
        self.lane = lane
        self.data = data
        self.payload_bytes = payload_bytes
        self.alerts = alerts
        self.notifications = notifications


class Batcher:
    def __init__(self, run_id: str, producer: int, tenant: str, max_events: int,
                 max_bytes: int, max_wait: float, log: SendLog | None):
        self.run_id = run_id
        self.producer = producer
        self.envelope = Envelope(tenant)
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.max_wait = max_wait
        self.log = log
        self.open: dict[tuple[str, str], OpenBatch] = {}
        self.ready: list[OpenBatch] = []
        self.seq = 0

    def add(self, group) -> None:
        """Add one notification of `group` (its current version)."""
        key = (group.provider, group.lane)
        batch = self.open.get(key)
        if batch is None:
            batch = self.open[key] = OpenBatch(group.provider, group.lane)
        if not batch.events:
            batch.opened = time.monotonic()
        batch.events.extend(group.current)
        batch.event_alerts.extend(group.event_alerts)
        if self.log is not None:
            batch.keys.extend(group.keys)
        batch.payload_bytes += group.size
        batch.alerts += group.alerts
        batch.notifications += 1
        if len(batch.events) >= self.max_events or batch.payload_bytes >= self.max_bytes:
            self._close(key)

    def close_due(self, now: float) -> None:
        """Close every batch whose first event has waited max_wait."""
        for key, batch in list(self.open.items()):
            if batch.events and now - batch.opened >= self.max_wait:
                self._close(key)

    def close_all(self) -> None:
        for key, batch in list(self.open.items()):
            if batch.events:
                self._close(key)

    def _close(self, key) -> None:
        self.ready.append(self.open.pop(key))

    def take(self) -> list[OpenBatch]:
        ready, self.ready = self.ready, []
        return ready

    def seal(self, batch: OpenBatch, sent_at: float) -> Closed:
        """Encode a ready batch stamped `sent_at`, and log it."""
        bid = batch_id(self.run_id, self.producer, self.seq)
        self.seq += 1
        data = self.envelope.batch(bid, batch.provider, sent_at, batch.events)
        if self.log is not None:
            self.log.add_batch(sent_at, batch.provider, batch.event_alerts,
                               [event_digest(e) for e in batch.events], batch.keys)
        return Closed(batch.lane, data, batch.payload_bytes, batch.alerts, batch.notifications)
