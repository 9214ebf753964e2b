"""The indexer process: take records from every worker's ring, commit them to the store in
transactions sized by alerts and time, then publish each ring's committed sequence number (the
workers ack up to it). It does I/O, not CPU work: records arrive sink-ready.

Loop, top-down:  handle_control -> wait_for_data -> take -> flush when due  (until drained).
While a flush fails (store down, locked, full) it retries with backoff and takes nothing new:
the rings fill, the workers pause, and the backlog stays in Redis.
"""

from __future__ import annotations

import logging
import random
import signal
import sys
import time
from dataclasses import dataclass

import redis

from farm import metrics
from farm.keys import Keys
from farm.log import setup_logging
from farm.pipeline import unpack_record
from farm.redisconn import RedisUnavailable, connect
from farm.ring import Ring, wait_doorbell
from farm.sinks import writer_for

log = logging.getLogger("farm.indexer")

BOOT_ERROR = 3


@dataclass
class Taken:
    slot: int
    seq: int
    sent_at: float
    alerts: int
    body: bytes


class Indexer:
    def __init__(self, cfg, ring_handles: dict, control, doorbell, redis_url: str):
        self.cfg = cfg
        self.rings = {slot: Ring(handle) for slot, handle in ring_handles.items()}
        self.control = control
        self.doorbell = doorbell
        self.redis = connect(redis_url)
        self.keys = Keys(cfg.redis.prefix)
        self.writer = writer_for(cfg)
        self.metrics = metrics.indexer_metrics()
        self.commit_alerts = cfg.store.commit_rows
        self.commit_seconds = cfg.store.commit_ms / 1000
        self.pending: list[Taken] = []
        self.pending_alerts = 0
        self.oldest = 0.0
        self.stopping = False

    def run(self) -> None:
        log.info("indexer ready: %d rings into %s", len(self.rings), self.cfg.store.kind)
        while True:
            self.handle_control()
            if not self.pending:
                if self.stopping and not self.take():
                    break
                wait_doorbell(self.doorbell, 0.5)
            else:
                wait_doorbell(self.doorbell, max(0.0, self.oldest + self.commit_seconds
                                                 - time.monotonic()))
            self.take()
            if self.pending and (self.pending_alerts >= self.commit_alerts or self.stopping
                                 or time.monotonic() >= self.oldest + self.commit_seconds):
                self.flush()
                self.writer.maintain()
        self.writer.close()
        for ring in self.rings.values():
            ring.close()
        log.info("indexer drained and stopped")

    def handle_control(self) -> None:
        """The supervisor asks us to reset the ring of a worker that died."""
        while self.control.poll():
            command, slot = self.control.recv()
            if command == "reset":
                self.rings[slot].reset()
                self.control.send(("reset", slot))

    def take(self) -> int:
        """Take records round-robin from every ring until none is left or a flush is due."""
        took = 0
        progress = True
        while progress and self.pending_alerts < self.commit_alerts:
            progress = False
            for slot, ring in self.rings.items():
                record = ring.get()
                if record is None:
                    continue
                seq, payload = record
                sent_at, alerts, body = unpack_record(payload)
                if not self.pending:
                    self.oldest = time.monotonic()
                self.pending.append(Taken(slot, seq, sent_at, alerts, body))
                self.pending_alerts += max(alerts, 1)
                took += 1
                progress = True
        return took

    def flush(self) -> None:
        """Commit everything pending (retrying until it works), then publish per-ring seqs."""
        bodies = [t.body for t in self.pending]
        delay = 0.1
        while True:
            started = time.perf_counter()
            try:
                rejected = self.writer.write(bodies)
                break
            except Exception as exc:  # the store's own errors vary; every one is retried
                self.metrics.errors.inc()
                log.warning("store write failed (%s: %s); retrying in %.1fs",
                            type(exc).__name__, exc, delay)
                self._pause(delay)
                delay = min(delay * 2, 10.0) * random.uniform(0.8, 1.2)
        committed_at = time.time()
        self.metrics.commit_seconds.observe(time.perf_counter() - started)
        self.metrics.commits.inc()
        self.metrics.records.inc(len(self.pending))
        if rejected:
            self._dead_letter(rejected)
        highest: dict[int, int] = {}
        for t in self.pending:
            highest[t.slot] = max(highest.get(t.slot, 0), t.seq)
            if t.alerts:
                self.metrics.alerts.inc(t.alerts)
                self.metrics.latency.observe(max(0.0, committed_at - t.sent_at))
        for slot, seq in highest.items():
            self.rings[slot].publish_committed(seq)
        self.pending.clear()
        self.pending_alerts = 0

    def _dead_letter(self, rejected: list[bytes]) -> None:
        """Items the store refused for good: to the dead-letter list, and counted as dead
        instead of indexed."""
        self.metrics.rejected.inc(len(rejected))
        for _attempt in range(30):
            try:
                pipe = self.redis.pipeline(transaction=True)
                pipe.lpush(self.keys.dlq, *rejected)
                pipe.incrby(self.keys.stat("alerts_dead"), len(rejected))
                pipe.decrby(self.keys.stat("alerts_indexed"), len(rejected))
                pipe.execute()
                return
            except redis.RedisError as exc:
                log.warning("cannot dead-letter %d rejected items yet: %s", len(rejected), exc)
                self._pause(1.0)
        log.error("gave up dead-lettering %d rejected items", len(rejected))

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.handle_control()
            time.sleep(min(0.05, seconds))

    def stop(self, *_args) -> None:
        self.stopping = True


def main(cfg, ring_handles: dict, control, doorbell, redis_url: str) -> None:
    """Entry point of the spawned indexer process."""
    setup_logging(cfg.farm.log_level, "indexer")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    metrics.use_identity("indexer")
    try:
        indexer = Indexer(cfg, ring_handles, control, doorbell, redis_url)
    except RedisUnavailable as exc:
        log.error("%s", exc)
        sys.exit(BOOT_ERROR)
    signal.signal(signal.SIGTERM, indexer.stop)
    indexer.run()
