"""Concurrent requests for the same tenant, provider and lane share a wire-v1 batch.

The first request of a batch starts a short timer ([ingest] flush_ms); requests that arrive
meanwhile join it; the batch is pushed (one LPUSH) when the timer fires or when it reaches
[ingest] batch_events events or batch_bytes bytes. Every request of the batch is answered only
after the LPUSH has returned, with the batch id; if the LPUSH fails, every one of them gets the
error. A request is never split across batches, so it maps to exactly one batch id.
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


@dataclass
class Open:
    """A batch still taking requests."""

    id: str
    started: float
    events: list = field(default_factory=list)
    size: int = 0
    future: asyncio.Future | None = None
    timer: asyncio.TimerHandle | None = None


GroupKey = tuple[str, str, str, tuple]  # tenant, provider, lane, extras


class Batcher:
    def __init__(self, redis, keys: Keys, flush_ms: int, max_events: int, max_bytes: int,
                 metrics=None, wait_replicas: int = 0, wait_timeout_ms: int = 1000):
        self.redis = redis
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self.keys = keys
        self._shards = itertools.cycle(keys.all_shards())  # batches spread over the shards
        self.flush_seconds = flush_ms / 1000
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.metrics = metrics
        self._open: dict[GroupKey, Open] = {}
        self._pushing: set[asyncio.Task] = set()

    async def add(self, tenant: str, provider: str, lane: str, events: list, size: int,
                  extras: tuple = ()) -> str:
        """Add one request's events; returns the batch id once the batch is in Redis.
        Raises StoreFailed if it could not be stored."""
        key = (tenant, provider, lane, extras)
        batch = self._open.get(key)
        if batch is None:
            loop = asyncio.get_running_loop()
            batch = self._open[key] = Open(uuid.uuid4().hex, time.monotonic())
            batch.future = loop.create_future()
            if self.flush_seconds:
                batch.timer = loop.call_later(self.flush_seconds, self._flush, key)
            else:
                batch.timer = loop.call_soon(self._flush, key)
        batch.events.extend(events)
        batch.size += size
        future = batch.future
        if len(batch.events) >= self.max_events or batch.size >= self.max_bytes:
            self._flush(key)
        # One request's cancellation must not cancel the batch its neighbours wait on.
        return await asyncio.shield(future)

    def _flush(self, key: GroupKey) -> None:
        batch = self._open.pop(key, None)
        if batch is None:
            return
        batch.timer.cancel()
        task = asyncio.ensure_future(self._push(key, batch))
        self._pushing.add(task)
        task.add_done_callback(self._pushing.discard)

    async def _push(self, key: GroupKey, batch: Open) -> None:
        tenant, provider, lane, extras = key
        try:
            raw = encode_batch(batch.events, provider, tenant, batch.id, **dict(extras))
            await self._push_raw(self.keys.queue(lane, next(self._shards)), raw)
        except Exception as exc:  # every waiting request must get an answer
            if self.metrics is not None:
                self.metrics.store_failures.inc()
            if not isinstance(exc, StoreFailed):
                exc = StoreFailed(str(exc) or type(exc).__name__)
            batch.future.set_exception(exc)
            batch.future.exception()  # a batch nobody awaits any more must not log noise
            return
        batch.future.set_result(batch.id)
        if self.metrics is not None:
            self.metrics.batch_stored(tenant, provider, lane, len(batch.events), len(raw),
                                      time.monotonic() - batch.started)

    async def _push_raw(self, queue: str, raw: bytes) -> None:
        """LPUSH one batch; with wait_replicas, WAIT in the same pipeline, so on the same
        connection: WAIT counts only the writes its own connection made. Raises NotReplicated
        unless wait_replicas replicas have the push."""
        if not self.wait_replicas:
            await self.redis.lpush(queue, raw)
            return
        node = await _master_of(self.redis, queue)
        target = {"target_nodes": node} if node is not None else {}
        async with self.redis.pipeline(transaction=False) as pipe:
            # On a cluster both go to the queue's master in one request (one connection there);
            # unnamed, WAIT would go to the client's default node, which saw no write.
            pipe.execute_command("LPUSH", queue, raw, **target)
            pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms, **target)
            _, confirmed = await pipe.execute()
        if node is not None and await _master_of(self.redis, queue) != node:
            confirmed = 0  # the slot moved meanwhile: the WAIT may not have seen the push
        if confirmed < self.wait_replicas:
            raise NotReplicated(
                f"the alerts reached the Redis master, but only {confirmed} of the "
                f"{self.wait_replicas} replicas [redis] wait_replicas asks for confirmed them "
                f"within {self.wait_timeout_ms} ms, so a failover could lose them; send them "
                f"again (if the first copy survives, it is counted as a duplicate)")

    async def close(self) -> None:
        """Push every open batch now and wait until all pushes have finished."""
        for key in list(self._open):
            self._flush(key)
        while self._pushing:
            await asyncio.gather(*self._pushing, return_exceptions=True)


async def _master_of(client, key: str):
    """The cluster node holding key's slot now, or None for a single Redis."""
    if not isinstance(client, AsyncCluster):
        return None
    await client.initialize()  # a no-op once the slot map is known
    return client.get_node_from_key(key)
