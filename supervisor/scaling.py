"""The supervisor's side of `[workers] count = "auto"`: measure the backlog, ask the Autoscaler
(farm/autoscale.py), start a worker or drain one. A retired worker stops like any draining
worker: it takes nothing new, acks what the indexer committed, and exits; whatever it still held
is requeued when it is reaped, so nothing is lost either way.
"""

from __future__ import annotations

import logging
import time

import redis

from farm import backlog
from farm.autoscale import Autoscaler, Backlog, Decision
from farm.redisconn import describe

log = logging.getLogger("farm.supervisor")

TICK_SECONDS = 1.0


class WorkerScaling:
    """Owns the target worker count; the supervisor starts slots below it and retires above."""

    def __init__(self, sup, scaler: Autoscaler | None, fixed: int):
        self.sup = sup
        self.scaler = scaler
        self.target = scaler.target if scaler is not None else fixed
        self.retiring: set[int] = set()
        self.decisions = {"up": 0, "down": 0}
        self._next_tick = 0.0

    @property
    def auto(self) -> bool:
        return self.scaler is not None

    def wanted(self, slot: int) -> bool:
        return slot < self.target

    def tick(self) -> None:
        """At most once a second: measure, decide, act."""
        now = time.monotonic()
        if self.scaler is None or now < self._next_tick or self.sup.state != "running":
            return
        self._next_tick = now + TICK_SECONDS
        try:
            lanes = backlog.read_lanes(self.sup.redis, self.sup.keys)
        except redis.RedisError as exc:
            log.warning("autoscale: %s", describe(self.sup.redis_url, exc))
            return
        ages = [a for a in (s.oldest_age() for s in lanes.values()) if a is not None]
        seen = Backlog(sum(s.batches for s in lanes.values()), max(ages) if ages else None)
        decision = self.scaler.observe(now, seen)
        if decision is not None:
            self.apply(decision)

    def apply(self, decision: Decision) -> None:
        before, self.target = self.target, decision.target
        self.decisions[decision.direction] += 1
        log.info("autoscale %s: %d -> %d workers (%s)", decision.direction, before,
                 self.target, decision.reason)
        if decision.direction == "up":
            child = self.sup.workers[self.target - 1]
            child.start_at = 0.0  # spawn_due starts it (or restarts it once its drain ends)
            return
        for slot in range(self.target, len(self.sup.workers)):
            child = self.sup.workers[slot]
            if child.alive and slot not in self.retiring:
                self.retiring.add(slot)
                child.proc.terminate()  # the worker drains: farm/worker.py, stop()

    def reaped(self, slot: int) -> bool:
        """A worker process ended; True if that was a retirement (no restart, no backoff)."""
        if slot not in self.retiring:
            return not self.wanted(slot)
        self.retiring.discard(slot)
        if self.wanted(slot):  # the count went up again while it drained
            self.sup.workers[slot].start_at = 0.0
        return True

    def running(self) -> int:
        return sum(1 for child in self.sup.workers if child.alive)

    def status(self) -> dict:
        doc = {"mode": "auto" if self.auto else "fixed", "target": self.target,
               "running": self.running(), "decisions": dict(self.decisions)}
        if self.scaler is not None:
            doc.update(min=self.scaler.low, max=self.scaler.high)
        return doc
