"""The maintenance watcher: gives alerts held in maintenance their own status back once no window
holds them (Keep's `recover_previous_status` strategy and its watcher).

Every supervisor runs one, in a thread. Every `[maintenance] release_seconds` one of them (the
one that takes `<M>:maintenance:release`, a lock that lasts the interval) reads the store's
current versions in status `maintenance`, a page at a time, and asks the windows in force now
whether one still takes each with the status it came with. Those no window takes are sent to the
workers in release batches (farm/maintenance/release.py), through the normal queue, so the
released version is deduplicated, correlated, stored and notified like any other, and a release
that races a newer notification of the same alert is skipped by the worker.

A pass reads at most `PAGES_PER_PASS` pages and carries on from there at the next, so a store
with many held alerts costs each pass the same, and every held alert is looked at in turn.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import msgpack
import redis

from farm.maintenance.release import HELD, RELEASE, is_held, released
from farm.maintenance.screen import first_taker
from farm.maintenance.sources import Windows
from farm.redisconn import describe
from farm.search import Query, SearchError, search_page
from farm.wire import PROVIDERS, WIRE_VERSION

log = logging.getLogger("farm.maintenance")

PAGE = 500
PAGES_PER_PASS = 20
RELEASE_BATCH = 200  # alerts per release batch


class MaintenanceWatcher:
    """One pass: `run_pass(now)`; `start()` runs passes every `every` seconds in a thread."""

    def __init__(self, cfg, redis_client, keys, redis_url: str, node: str, every: float):
        self.cfg = cfg
        self.redis = redis_client
        self.redis_url = redis_url
        self.keys = keys
        self.node = node
        self.every = every
        self.windows = Windows(cfg, redis_client, keys)
        self.cursor: str | None = None
        # For /status: this node's rounds (another node may make the next one).
        self.last_round: float | None = None
        self.last_held = 0   # alerts in status maintenance the last round read
        self.last_sent = 0   # of which sent back
        self.sent = 0        # since start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="farm-maintenance-watcher",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.run_pass(time.time())
            except redis.RedisError as exc:
                log.warning("maintenance watcher: %s; trying again in %gs",
                            describe(self.redis_url, exc), self.every)
            except SearchError as exc:
                log.warning("maintenance watcher: the store cannot be read (%s); trying again "
                            "in %gs", exc, self.every)

    def run_pass(self, now: float) -> int:
        """Release what no window holds at `now`, if this node holds the lock for the interval;
        returns how many alerts were sent for release. Raises Redis and SearchError errors."""
        lock_ms = max(1, int(self.every * 1000))
        if not self.redis.set(self.keys.maintenance_release_lock, self.node, nx=True,
                              px=lock_ms):
            return 0
        windows = self.windows.active_at(now)
        sent = held = 0
        for _ in range(PAGES_PER_PASS):
            page = search_page(self.cfg, Query(statuses=(HELD,), limit=PAGE,
                                               before=self.cursor))
            free = [doc for doc in page.alerts
                    if is_held(doc) and first_taker(windows, released(doc)) is None]
            held += len(page.alerts)
            sent += self.send(free, now)
            self.cursor = page.next_before
            if self.cursor is None:
                break
        self.last_round, self.last_held, self.last_sent = now, held, sent
        self.sent += sent
        if sent:
            log.info("maintenance watcher: %d alerts no window holds any more sent back to "
                     "the workers with their own status", sent)
        return sent

    def status(self) -> dict:
        return {"release_seconds": self.every, "last_round": self.last_round,
                "last_held": self.last_held, "last_sent": self.last_sent, "sent": self.sent}

    def send(self, docs: list[dict], now: float) -> int:
        """Queue release batches for `docs`: one per tenant and provider, RELEASE_BATCH alerts
        at most, on the normal lane of the shards in turn."""
        groups: dict[tuple, list[dict]] = {}
        for doc in docs:
            provider = doc.get("providerType")
            key = (doc.get("tenant") or "default",
                   provider if provider in PROVIDERS else "keep",
                   doc.get("providerId") if isinstance(doc.get("providerId"), str) else None)
            groups.setdefault(key, []).append(doc)
        batches = []
        for (tenant, provider, provider_id), held in groups.items():
            for start in range(0, len(held), RELEASE_BATCH):
                part = held[start:start + RELEASE_BATCH]
                envelope = {"v": WIRE_VERSION, "id": uuid.uuid4().hex, "tenant": tenant,
                            "provider": provider, "sent_at": now, "events": part,
                            "control": {RELEASE: [doc.get("eventId") for doc in part]}}
                if provider_id:
                    envelope["provider_id"] = provider_id
                batches.append(msgpack.packb(envelope))
        for n, batch in enumerate(batches):
            self.redis.lpush(self.keys.queue("normal", n % self.keys.shards), batch)
        return len(docs)
