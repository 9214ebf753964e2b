"""The gateway's rate limiter (GCRA in Redis) on a real Redis: a bucket admits exactly its burst,
whether the requests come together or one at a time."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from farm.ingest.ratelimit import RateLimiter
from farm.redis_keys import Keys


async def _admitted(redis_url: str, rate: str, burst_seconds: float, requests: int,
                    together: bool) -> tuple[int, int]:
    """(requests admitted, the bucket's burst) for `requests` requests to a fresh bucket."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        limiter = RateLimiter(client, "farm", rate, burst_seconds, {})
        if together:  # one event-loop turn: one Lua call admits k of n
            verdicts = await asyncio.gather(*[limiter.admit("acme", "keep")
                                              for _ in range(requests)])
        else:
            verdicts = [await limiter.admit("acme", "keep") for _ in range(requests)]
    finally:
        await client.aclose()
    return sum(v.allowed for v in verdicts), limiter.policy("acme", "keep").burst


# Rates whose interval x burst / interval falls just below the burst in floating point.
@pytest.mark.parametrize("rate", ["127/s", "254/s", "507/s", "1014/s", "2047/s", "4094/s",
                                  "1/s", "2000/s"])
def test_a_fresh_bucket_admits_exactly_its_burst_at_once(redis, redis_url, rate):
    admitted, burst = asyncio.run(_admitted(redis_url, rate, 1.0, 4200, together=True))
    assert admitted == burst


@pytest.mark.parametrize("rate", ["127/h", "7/h", "1000/h"])
def test_a_fresh_bucket_admits_exactly_its_burst_one_request_at_a_time(redis, redis_url,
                                                                        rate):
    # An hour's burst at an hourly rate: nothing refills while the test runs, and every
    # request is its own Lua call, so each stores the bucket's time again.
    admitted, burst = asyncio.run(_admitted(redis_url, rate, 3600, 1010, together=False))
    assert admitted == burst


def test_the_bucket_lives_under_the_documented_key(redis, redis_url):
    asyncio.run(_admitted(redis_url, "5/s", 1.0, 1, together=True))
    assert redis.exists(Keys("farm").rate_limit("acme", "keep"))
    assert 0 < redis.pttl(Keys("farm").rate_limit("acme", "keep")) <= 1001
