"""The notify sender process: moves notifications from Redis to the receiver, in batches.

Loop, top-down:  [resync] -> fill -> deliver (retry with backoff | dead-letter) -> ...
It takes entries from `<p>:notify` into its own inflight list (farm/notify/outbox.py) and
deletes them from there only once the receiver answered 2xx or they went to the dead-letter
list, so a sender killed at any moment resends its request when it starts again. A request
may therefore reach a receiver twice (a kill between its 2xx and the delete); the
X-Farm-Delivery header is the same both times, and every alert carries its eventId.

SIGTERM: finish the attempt in progress, leave the rest in Redis, exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import sys
import time

import redis

from farm import metrics
from farm.deadletters import dead_letter
from farm.lifeline import BOOT_ERROR, Lifeline
from farm.log import setup_logging
from farm.notify.delivery import Receiver
from farm.notify.entries import counts, request_body
from farm.notify.outbox import NotifyKeys, Outbox
from farm.redis_keys import keys_for
from farm.redisconn import RedisUnavailable, connect_async, describe

log = logging.getLogger("farm.notify")

FIRST_BACKOFF_SECONDS = 0.2
WAIT_SLICE_SECONDS = 0.5   # longest the loop goes without checking its lifeline and SIGTERM
FILL_POLL_SECONDS = 0.02


def backoff(attempt: int, most: float) -> float:
    """Wait before attempt number attempt+1: doubling from FIRST_BACKOFF_SECONDS, capped at
    most, then jittered down by up to half so many senders do not retry in step."""
    ceiling = min(most, FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1))
    return ceiling * random.uniform(0.5, 1.0)


class Sender:
    """One node's sender. `run()` returns once stopped; Redis outages are waited out."""

    def __init__(self, cfg, redis_client, redis_url: str, lifeline: Lifeline | None = None):
        self.cfg = cfg.notify
        self.redis_url = redis_url
        keys = keys_for(cfg, redis_url)
        # One notify list per queue shard (the ack script pushes to its shard's); a request
        # takes from one of them, and they take turns.
        self.outboxes = [Outbox(redis_client, NotifyKeys(keys.shard_prefix(s)), cfg.node_id)
                         for s in keys.all_shards()]
        self.outbox = self.outboxes[0]
        self._turn = 0
        self.receiver = Receiver(self.cfg.url, dict(self.cfg.headers), self.cfg.secret,
                                 self.cfg.timeout_seconds)
        self.lifeline = lifeline
        self.metrics = metrics.notify_metrics()
        for reason in ("timeout", "connection"):  # series from the start, failed yet or not
            self.metrics.failures.labels(reason)
        for kind in ("alert", "incident"):
            self.metrics.delivered.labels(kind)
        self.stopping = False

    def stop(self) -> None:
        self.stopping = True

    async def run(self) -> None:
        await self.receiver.open()
        if self.lifeline is not None:
            self.lifeline.ready()
        log.info("notify sender ready: POSTing to %s", self.cfg.url)
        try:
            await self._loop()
        finally:
            await self.receiver.close()
        log.info("notify sender stopped")

    async def _loop(self) -> None:
        entries: list[bytes] = []
        resync = True
        while not self.stopping:
            self.touch()
            try:
                if resync:
                    # After a Redis error our view of the inflight list cannot be trusted (a
                    # move may have happened without its reply reaching us): read it again.
                    entries = await self.leftovers()
                    resync = False
                    if entries:
                        log.info("resending %d notifications left in flight", len(entries))
                if not entries:
                    entries = await self.fill()
                if entries:
                    await self.deliver(entries)
                    entries = []
            except redis.RedisError as exc:
                log.warning("%s; retrying in 1s", describe(self.redis_url, exc))
                resync = True
                await self.pause(1.0)

    def touch(self) -> None:
        if self.lifeline is not None:
            self.lifeline.exit_if_orphaned()

    async def pause(self, seconds: float) -> None:
        """Sleep, in slices, until seconds passed or SIGTERM came."""
        deadline = time.monotonic() + seconds
        while not self.stopping and (left := deadline - time.monotonic()) > 0:
            self.touch()
            await asyncio.sleep(min(left, WAIT_SLICE_SECONDS))

    async def leftovers(self) -> list[bytes]:
        """What a previous run left in flight (in one shard's inflight list at most)."""
        for box in self.outboxes:
            entries = await box.leftovers()
            if entries:
                self.outbox = box
                return entries
        return []

    async def fill(self) -> list[bytes]:
        """Up to batch_max entries of one shard: whatever waits, else the first that comes
        within a slice; then up to linger_ms more to fill the request."""
        most = self.cfg.batch_max
        n = len(self.outboxes)
        entries: list[bytes] = []
        for turn in range(n):
            self.outbox = self.outboxes[(self._turn + turn) % n]
            entries = await self.outbox.take(most)
            if entries:
                break
        self._turn = (self._turn + 1) % n
        if not entries:
            self.outbox = self.outboxes[self._turn]
            entries = await self.outbox.wait_for_one(WAIT_SLICE_SECONDS)
        deadline = time.monotonic() + self.cfg.linger_ms / 1000
        while entries and len(entries) < most and not self.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await asyncio.sleep(min(left, FILL_POLL_SECONDS))
            entries += await self.outbox.take(most - len(entries))
        return entries

    async def deliver(self, entries: list[bytes]) -> None:
        """POST until 2xx; dead-letter once retry_seconds have passed since the first attempt.
        Returns early, leaving the entries in flight, when told to stop."""
        body = request_body(entries)
        first = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            result = await self.receiver.post(body)
            if result.delivered:
                await self.outbox.delivered()
                self.metrics.deliveries.inc()
                for kind, n in counts(entries).items():
                    self.metrics.delivered.labels(kind).inc(n)
                self.metrics.latency.observe(time.monotonic() - first)
                if attempt > 1:
                    log.info("delivered %d notifications after %d attempts", len(entries),
                             attempt)
                return
            self.metrics.failures.labels(result.label).inc()
            wait = backoff(attempt, self.cfg.backoff_max_seconds)
            elapsed = time.monotonic() - first
            if elapsed + wait > self.cfg.retry_seconds:
                reason = (f"notify: gave up after {attempt} attempts in {elapsed:.0f}s; "
                          f"last: {result.problem}")
                # The payload is the entries as queued, so `farm dlq replay` can requeue them.
                await self.outbox.give_up(dead_letter(
                    reason, "notify", [e.decode("utf-8", "replace") for e in entries]))
                self.metrics.dead_lettered.inc(len(entries))
                log.error("%s (%d notifications dead-lettered; `farm dlq list` shows them)",
                          reason, len(entries))
                return
            if attempt == 1 or attempt % 10 == 0:
                log.warning("notify attempt %d failed: %s; retrying", attempt, result.problem)
            await self.pause(wait)
            if self.stopping:
                return  # still in flight: sent again at the next start


def main(cfg, redis_url: str, lifeline: Lifeline) -> None:
    """Entry point of the spawned sender process."""
    lifeline.bind()
    setup_logging(cfg.farm.log_level, "notify")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when we stop
    metrics.use_identity("notify")
    try:
        client = connect_async(redis_url)
    except RedisUnavailable as exc:
        log.error("%s", exc)
        sys.exit(BOOT_ERROR)
    sender = Sender(cfg, client, redis_url, lifeline)

    async def serve() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, sender.stop)
        try:
            await sender.run()
        finally:
            await client.aclose()

    asyncio.run(serve())
