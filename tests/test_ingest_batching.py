"""The gateway's batcher on a real Redis: requests share wire batches, batches ready together
share one round trip, and every request's answer names the batch that holds its events."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from farm.ingest.batching import Batcher, StoreFailed
from farm.redis_keys import LANES, Keys
from farm.wire import decode_batch

PREFIX = "batchtest"


def _lpush_calls(redis) -> int:
    return redis.info("commandstats").get("cmdstat_lpush", {}).get("calls", 0)


async def _add_many(redis_url: str, requests: int) -> list[tuple[str, str, str, dict]]:
    """`requests` concurrent requests over 3 tenants, 2 providers and both lanes, each with one
    event; returns (batch id, tenant, lane, event) per request."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        batcher = Batcher(client, Keys(PREFIX), flush_ms=1, max_events=7, max_bytes=1 << 20)
        plan = []
        for n in range(requests):
            tenant = f"t{n % 3}"
            provider = ("keep", "zabbix")[n % 2]
            lane = LANES[n % 5 == 0]
            plan.append((tenant, provider, lane, {"name": f"alert-{n}"}))
        ids = await asyncio.gather(*[batcher.add(tenant, provider, lane, [event], 20)
                                     for tenant, provider, lane, event in plan])
        await batcher.close()
    finally:
        await client.aclose()
    return [(batch_id, tenant, lane, event)
            for batch_id, (tenant, _provider, lane, event) in zip(ids, plan, strict=True)]


def test_batches_ready_together_share_one_lpush_and_each_answer_names_its_batch(redis,
                                                                               redis_url):
    keys = Keys(PREFIX)
    redis.delete(*(keys.queue(lane) for lane in LANES))
    before = _lpush_calls(redis)
    answers = asyncio.run(_add_many(redis_url, 600))
    lpushes = _lpush_calls(redis) - before
    stored = {}
    for lane in LANES:
        for raw in redis.lrange(keys.queue(lane), 0, -1):
            batch = decode_batch(raw)
            stored[batch.id] = (lane, batch)
    assert len(stored) > 60   # at most 7 events per batch
    for batch_id, tenant, lane, event in answers:
        batch_lane, batch = stored[batch_id]
        assert (batch_lane, batch.tenant) == (lane, tenant)
        assert event in batch.events
    assert sum(len(b.events) for _lane, b in stored.values()) == 600
    # Several ready batches go in each LPUSH (one per lane per round trip), not one each.
    assert lpushes < len(stored) / 2


def test_a_batch_that_cannot_be_stored_fails_every_request_in_it():
    async def run() -> list:
        client = aioredis.Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=1)
        try:
            batcher = Batcher(client, Keys(PREFIX), flush_ms=1, max_events=100,
                              max_bytes=1 << 20)
            return await asyncio.gather(*[batcher.add("t", "keep", "normal", [{"n": n}], 10)
                                          for n in range(5)], return_exceptions=True)
        finally:
            await client.aclose()

    outcomes = asyncio.run(run())
    assert all(isinstance(outcome, StoreFailed) for outcome in outcomes)
