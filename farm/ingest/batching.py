"""Concurrent requests for the same tenant, provider and lane share a wire-v1 batch, and batches
that are ready together share one round trip to Redis.

The first request of a batch starts a short timer ([ingest] flush_ms); requests that arrive
meanwhile join it. The batch is ready when the timer fires or when it reaches [ingest]
batch_events events or batch_bytes bytes. One push at a time goes to Redis: every batch ready
by then goes in it, one LPUSH per lane (in one pipeline when both lanes have some). A batch
whose timer fires while a push is on its way keeps taking requests until that push returns, so
under load batches grow and round trips stay few, while a quiet gateway pushes each batch as
soon as its timer fires.

Every request of a batch is answered only after the LPUSH of its batch has returned, with the
batch id; if that LPUSH fails, every one of them gets the error. A request is never split across
batches, so it maps to exactly one batch id.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass, field

from redis.asyncio.cluster import RedisCluster as AsyncCluster

from farm.redis_keys import Keys
from farm.wire import encode_batch

# Optional envelope keys carrying Keep's query parameters (see docs/ingest.md).
EXTRA_KEYS = ("provider_id", "fingerprint")


class StoreFailed(Exception):
    """The batch could not be pushed to Redis; nothing of it was stored."""


class NotReplicated(StoreFailed):
    """The batch is on the Redis master, but fewer replicas than [redis] wait_replicas confirmed
    it in time: a failover now could lose it, so it is not accepted."""


GroupKey = tuple[str, str, str, tuple]  # tenant, provider, lane, extras


@dataclass
class Open:
    """A batch still taking requests; each request waits on its own future, so that one
    request's cancellation leaves its neighbours waiting."""

    id: str
    key: GroupKey
    started: float
    events: list = field(default_factory=list)
    size: int = 0
    waiters: list = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    raw: bytes = b""


class Batcher:
    def __init__(self, redis, keys: Keys, flush_ms: int, max_events: int, max_bytes: int,
                 metrics=None, wait_replicas: int = 0, wait_timeout_ms: int = 1000):
        self.redis = redis
        self.keys = keys
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self._shards = itertools.cycle(keys.all_shards())  # batches spread over the shards
        self.flush_seconds = flush_ms / 1000
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.metrics = metrics
        self._open: dict[GroupKey, Open] = {}
        self._ready: list[Open] = []
        self._due: set[GroupKey] = set()    # timer fired during a push: ready after it
        self._pusher: asyncio.Task | None = None

    async def add(self, tenant: str, provider: str, lane: str, events: list, size: int,
                  extras: tuple = ()) -> str:
        """Add one request's events; returns the batch id once the batch is in Redis.
        Raises StoreFailed if it could not be stored."""
        key = (tenant, provider, lane, extras)
        batch = self._open.get(key)
        loop = asyncio.get_running_loop()
        if batch is None:
            batch = self._open[key] = Open(uuid.uuid4().hex, key, time.monotonic())
            if self.flush_seconds:
                batch.timer = loop.call_later(self.flush_seconds, self._timer_fired, key)
            else:
                batch.timer = loop.call_soon(self._timer_fired, key)
        batch.events.extend(events)
        batch.size += size
        waiter = loop.create_future()
        batch.waiters.append(waiter)
        if len(batch.events) >= self.max_events or batch.size >= self.max_bytes:
            self._make_ready(key)
        return await waiter

    def _timer_fired(self, key: GroupKey) -> None:
        if self._pusher is not None:
            self._due.add(key)
        else:
            self._make_ready(key)

    def _make_ready(self, key: GroupKey) -> None:
        batch = self._open.pop(key, None)
        if batch is None:
            return
        batch.timer.cancel()
        self._due.discard(key)
        self._ready.append(batch)
        if self._pusher is None:
            self._pusher = asyncio.ensure_future(self._push_while_ready())

    async def _push_while_ready(self) -> None:
        try:
            while self._ready:
                ready, self._ready = self._ready, []
                await self._push(ready)
                for key in list(self._due):
                    self._make_ready(key)
        finally:
            self._pusher = None

    async def _push(self, ready: list[Open]) -> None:
        """Push `ready` in one round trip and answer every request waiting on them."""
        by_queue: dict[str, list[Open]] = {}
        for batch in ready:
            tenant, provider, lane, extras = batch.key
            try:
                batch.raw = encode_batch(batch.events, provider, tenant, batch.id,
                                         **dict(extras))
            except Exception as exc:  # every waiting request must get an answer
                self._failed(batch, exc)
                continue
            by_queue.setdefault(self.keys.queue(lane, next(self._shards)), []).append(batch)
        try:
            outcomes = await self._store({queue: [b.raw for b in batches]
                                          for queue, batches in by_queue.items()})
        except Exception as exc:
            outcomes = dict.fromkeys(by_queue, exc)
        for queue, batches in by_queue.items():
            error = outcomes[queue]
            for batch in batches:
                if error is None:
                    self._stored(batch)
                else:
                    self._failed(batch, error)

    async def _store(self, raws_by_queue: dict[str, list[bytes]]) -> dict[str, Exception | None]:
        """The one place batches enter Redis: one LPUSH per queue (oldest batch first, so it
        is taken first from the list's tail), in one round trip; with [redis] wait_replicas, a
        WAIT in the same pipeline, so on the same connection (WAIT counts only the writes of
        its own connection). Returns each queue's error, or None once its LPUSH has returned
        (and been confirmed by enough replicas)."""
        if len(raws_by_queue) == 1 and not self.wait_replicas:
            (queue, raws), = raws_by_queue.items()
            await self.redis.lpush(queue, *raws)
            return {queue: None}
        if self.wait_replicas and isinstance(self.redis, AsyncCluster):
            return await self._store_on_cluster(raws_by_queue)
        pipe = self.redis.pipeline(transaction=False)
        for queue, raws in raws_by_queue.items():
            pipe.lpush(queue, *raws)
        if self.wait_replicas:
            pipe.wait(self.wait_replicas, self.wait_timeout_ms)
        results = await pipe.execute(raise_on_error=False)
        # zip stops at the queues: a WAIT answer, when asked for, comes last
        outcomes = {queue: result if isinstance(result, Exception) else None
                    for queue, result in zip(raws_by_queue, results, strict=False)}
        if self.wait_replicas:
            confirmed = results[-1]
            if isinstance(confirmed, Exception) or confirmed < self.wait_replicas:
                shortfall = self.not_replicated(confirmed)
                outcomes = {queue: error or shortfall for queue, error in outcomes.items()}
        return outcomes

    async def _store_on_cluster(self, raws_by_queue: dict[str, list[bytes]]
                                ) -> dict[str, Exception | None]:
        """_store with wait_replicas on a Redis Cluster: WAIT counts only its own connection's
        writes on the node it is sent to, so each master that takes LPUSHes gets its own WAIT
        after them, all named to that node (one request per node, sent together); unnamed, a
        WAIT would go to the client's default node, which may have seen no write."""
        await self.redis.initialize()  # a no-op once the slot map is known
        by_node: dict[str, tuple] = {}
        for queue in raws_by_queue:
            node = self.redis.get_node_from_key(queue)
            by_node.setdefault(node.name, (node, []))[1].append(queue)
        pipe = self.redis.pipeline(transaction=False)
        for node, queues in by_node.values():
            for queue in queues:
                pipe.execute_command("LPUSH", queue, *raws_by_queue[queue], target_nodes=node)
            pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms,
                                 target_nodes=node)
        results = iter(await pipe.execute(raise_on_error=False))
        outcomes: dict[str, Exception | None] = {}
        for node, queues in by_node.values():
            pushed = {queue: next(results) for queue in queues}
            confirmed = next(results)
            if any(self.redis.get_node_from_key(q).name != node.name for q in queues):
                confirmed = 0  # a slot moved meanwhile: the WAIT may not have seen the push
            short = isinstance(confirmed, Exception) or confirmed < self.wait_replicas
            for queue, result in pushed.items():
                error = result if isinstance(result, Exception) else None
                outcomes[queue] = error or (self.not_replicated(confirmed) if short else None)
        return outcomes

    def not_replicated(self, confirmed) -> NotReplicated:
        got = "none" if isinstance(confirmed, Exception) else str(confirmed)
        return NotReplicated(
            f"the alerts reached the Redis master, but only {got} of the "
            f"{self.wait_replicas} replicas [redis] wait_replicas asks for confirmed them "
            f"within {self.wait_timeout_ms} ms, so a failover could lose them; send them "
            f"again (if the first copy survives, it is counted as a duplicate)")

    def _stored(self, batch: Open) -> None:
        for waiter in batch.waiters:
            if not waiter.done():
                waiter.set_result(batch.id)
        if self.metrics is not None:
            tenant, provider, lane, _extras = batch.key
            self.metrics.batch_stored(tenant, provider, lane, len(batch.events),
                                      len(batch.raw), time.monotonic() - batch.started)

    def _failed(self, batch: Open, exc: Exception) -> None:
        if self.metrics is not None:
            self.metrics.store_failures.inc()
        failure = exc if isinstance(exc, StoreFailed) else StoreFailed(str(exc) or
                                                                      type(exc).__name__)
        for waiter in batch.waiters:
            if not waiter.done():
                waiter.set_exception(failure)
                waiter.exception()  # a request gone meanwhile must not log noise

    async def close(self) -> None:
        """Push every open batch now and wait until all pushes have finished."""
        for key in list(self._open):
            self._make_ready(key)
        while self._pusher is not None:
            await asyncio.shield(self._pusher)
