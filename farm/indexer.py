"""The indexer process: take records from every worker's ring, commit them to the store in
transactions sized by alerts and time, then publish each ring's committed sequence number (the
workers ack up to it). It does I/O, not CPU work: records arrive sink-ready.

Loop, top-down:  handle_control -> settle -> wait_for_data -> take -> flush when due
(until drained). Up to the store's `max_in_flight` flushes are outstanding; each ring's
committed seq is published in flush order. While the store is down, flushes are retried with
backoff and nothing new is taken: the rings fill, the workers pause, and the backlog stays in
Redis.
"""

from __future__ import annotations

import logging
import random
import signal
import sys
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass

import redis

from farm import metrics
from farm.config import Config
from farm.lifeline import BOOT_ERROR, Lifeline
from farm.log import setup_logging
from farm.pipeline import unpack_record
from farm.redis_keys import keys_for
from farm.redisconn import RedisUnavailable, connect
from farm.ring import Ring, wait_doorbell
from farm.sinks import writer_for

log = logging.getLogger("farm.indexer")


@dataclass
class Taken:
    """One record taken from a ring and not yet handed to the store."""

    slot: int
    seq: int
    sent_at: float
    alerts: int
    body: bytes
    taken_at: float  # wall clock, like sent_at


@dataclass
class Flight:
    """One flush handed to the store and not yet known to be committed."""

    records: list[Taken]
    future: Future
    started: float


class Indexer:
    """The one process that writes to the store, fed by every worker's ring.

    Takes records round-robin, commits them in flushes sized by `[store] commit_rows`,
    `bulk_bytes`, `gather_ms` and `commit_ms`, keeps at most the writer's `max_in_flight` flushes
    outstanding, and publishes each ring's committed seq strictly in flush order, so a worker
    never acks a record that is not committed. A failed flush is retried with backoff for as
    long as it takes (the rings fill and the workers pause meanwhile); items the store rejects
    for good are dead-lettered and counted dead instead of indexed. `stop()` drains: everything
    already in the rings is committed before `run()` returns.
    Tells the supervisor, over `control`, when the store starts or stops failing.
    """

    def __init__(self, cfg: Config, ring_handles: dict, control, doorbell, redis_url: str,
                 lifeline: Lifeline | None = None):
        self.cfg = cfg
        self.lifeline = lifeline
        self.store_problem: str | None = None
        self.rings = {slot: Ring(handle) for slot, handle in ring_handles.items()}
        self.control = control
        self.doorbell = doorbell
        self.redis = connect(redis_url, check=False)  # used only to dead-letter, with retries
        self.keys = keys_for(cfg, redis_url)
        self.metrics = metrics.indexer_metrics()
        self.writer = writer_for(cfg, fts_report=self._fts_report)
        self.commit_alerts = cfg.store.commit_rows
        self.commit_seconds = cfg.store.commit_ms / 1000
        self.gather_seconds = min(cfg.store.gather_ms, cfg.store.commit_ms) / 1000
        self.pending: list[Taken] = []
        self.pending_alerts = 0
        self.pending_bytes = 0
        self.oldest = 0.0
        self.in_flight: deque[Flight] = deque()
        self.stopping = False

    def run(self) -> None:
        log.info("indexer ready: %d rings into %s", len(self.rings), self.cfg.store.kind)
        if self.lifeline is not None:
            self.lifeline.ready()
        while True:
            if self.lifeline is not None:
                self.lifeline.exit_if_orphaned()
            self.handle_control()
            self.settle()
            if self.stopping and not self.pending and not self.take():
                self.settle(block=True)
                if not self.pending:
                    break
            if self.pending and not self._full() and not self.stopping:
                # a commit ending rings the doorbell; else wake when the flush falls due
                due = self.commit_seconds if self.in_flight else self.gather_seconds
                timeout = max(0.0, self.oldest + due - time.monotonic())
            else:
                timeout = 0.0 if self.pending else 0.5
            wait_doorbell(self.doorbell, timeout)
            self.take()
            if self.pending and self._flush_due():
                self.flush()
                self.writer.maintain()
        self.writer.close()
        for ring in self.rings.values():
            ring.close()
        log.info("indexer drained and stopped")

    def _flush_due(self) -> bool:
        """Group commit: flush when the store has nothing in flight and the oldest pending
        record has waited gather_ms (a transaction's fixed cost shared by more alerts); while
        one commits, gather until it is done, the flush is full, or commit_ms passed."""
        age = time.monotonic() - self.oldest
        return (self._full() or self.stopping or age >= self.commit_seconds
                or (not self.in_flight and age >= self.gather_seconds))

    def _full(self) -> bool:
        return (self.pending_alerts >= self.commit_alerts
                or self.pending_bytes >= self.writer.flush_bytes)

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
        while progress and not self._full():
            progress = False
            for slot, ring in self.rings.items():
                record = ring.get()
                if record is None:
                    continue
                seq, payload = record
                sent_at, alerts, body = unpack_record(payload)
                if not self.pending:
                    self.oldest = time.monotonic()
                self.pending.append(Taken(slot, seq, sent_at, alerts, body, time.time()))
                self.pending_alerts += max(alerts, 1)
                self.pending_bytes += len(body)
                took += 1
                progress = True
        return took

    def flush(self) -> None:
        """Hand everything pending to the store; wait for the oldest flight only when as many
        are in flight as the store allows (that wait is the backpressure)."""
        handed = time.time()
        for t in self.pending:
            if t.alerts:
                self.metrics.taken.observe(max(0.0, t.taken_at - t.sent_at))
                self.metrics.waited.observe(handed - t.taken_at)
        self.in_flight.append(Flight(self.pending, self._submit(self.pending),
                                     time.perf_counter()))
        self.pending = []
        self.pending_alerts = self.pending_bytes = 0
        self.settle(block=len(self.in_flight) >= self.writer.max_in_flight)

    def _submit(self, records: list[Taken]) -> Future:
        future = self.writer.submit([t.body for t in records])
        future.add_done_callback(lambda _f: self.doorbell.release())  # wake the loop
        return future

    def settle(self, block: bool = False) -> None:
        """Publish committed flights in the order they were sent (a ring's committed seq may
        only move past records that are all committed). A failed flight is sent again."""
        delay = 0.1
        while self.in_flight and (block or self.in_flight[0].future.done()):
            flight = self.in_flight[0]
            try:
                rejected = flight.future.result()
            except Exception as exc:  # the store's own errors vary; every one is retried
                self.metrics.errors.inc()
                self._store_health(f"writes fail ({type(exc).__name__}: {exc})"[:300])
                log.warning("store write failed (%s: %s); retrying in %.1fs",
                            type(exc).__name__, exc, delay)
                self._pause(delay)
                delay = min(delay * 2, 10.0) * random.uniform(0.8, 1.2)
                flight.future = self._submit(flight.records)
                continue
            self.in_flight.popleft()
            self._committed(flight, rejected)
            self._store_health(None)
            block = False

    def _committed(self, flight: Flight, rejected: list) -> None:
        committed_at = time.time()
        self.metrics.commit_seconds.observe(time.perf_counter() - flight.started)
        self.metrics.commits.inc()
        self.metrics.records.inc(len(flight.records))
        if rejected:
            self._dead_letter(rejected)
        highest: dict[int, int] = {}
        for t in flight.records:
            highest[t.slot] = max(highest.get(t.slot, 0), t.seq)
            if t.alerts:
                self.metrics.alerts.inc(t.alerts)
                self.metrics.latency.observe(max(0.0, committed_at - t.sent_at))
        for slot, seq in highest.items():
            self.rings[slot].publish_committed(seq)

    def _fts_report(self, state) -> None:
        """The SQLite store's full-text index reports how far behind it is (from its thread)."""
        self.metrics.fts_lag.set(state.lag_seconds)
        self.metrics.fts_pending.set(state.pending)

    def _dead_letter(self, rejected: list[tuple[bytes, bool]]) -> None:
        """Items the store refused for good: to the dead-letter list; rejected events count as
        dead instead of indexed."""
        letters = [letter for letter, _ in rejected]
        alerts = sum(1 for _, is_alert in rejected if is_alert)
        self.metrics.rejected.inc(len(letters))
        while True:  # these alerts exist nowhere else now: never give up on them
            try:
                pipe = self.redis.pipeline(transaction=True)
                pipe.lpush(self.keys.dlq, *letters)
                if alerts:
                    pipe.incrby(self.keys.stat("alerts_dead"), alerts)
                    pipe.decrby(self.keys.stat("alerts_indexed"), alerts)
                pipe.execute()
                return
            except redis.RedisError as exc:
                log.warning("cannot dead-letter %d rejected items yet: %s", len(letters), exc)
                self._pause(1.0)

    def _store_health(self, problem: str | None) -> None:
        """Report a change of the store's health to the supervisor (for /healthz)."""
        if problem == self.store_problem:
            return
        self.store_problem = problem
        try:
            self.control.send(("store", problem))
        except OSError:
            pass  # the supervisor is gone; our lifeline ends us

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.lifeline is not None:
                self.lifeline.exit_if_orphaned()
            self.handle_control()
            time.sleep(min(0.05, seconds))

    def stop(self, *_args) -> None:
        self.stopping = True
        self.doorbell.release()  # a loop asleep until its gathering window ends drains now


def main(cfg: Config, ring_handles: dict, control, doorbell, redis_url: str,
         lifeline: Lifeline) -> None:
    """Entry point of the spawned indexer process."""
    lifeline.bind()
    setup_logging(cfg.farm.log_level, "indexer")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    metrics.use_identity("indexer")
    try:
        indexer = Indexer(cfg, ring_handles, control, doorbell, redis_url, lifeline)
    except RedisUnavailable as exc:
        log.error("%s", exc)
        sys.exit(BOOT_ERROR)
    signal.signal(signal.SIGTERM, indexer.stop)
    indexer.run()
