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


def _script_calls(redis) -> int:
    return sum(stats["calls"] for name, stats in redis.info("commandstats").items()
               if name in ("cmdstat_evalsha", "cmdstat_eval"))


async def _busy(redis_url: str, limiters: int, turns: int, per_turn: int,
                rate: str) -> tuple[int, float, int]:
    """(admitted, seconds taken, burst) for `turns` turns of `per_turn` requests to one
    bucket, spread over `limiters` limiters (one per gateway process) taking turns."""
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(limiters)]
    try:
        sharing = [RateLimiter(client, "farm", rate, 1.0, {}) for client in clients]
        loop = asyncio.get_running_loop()
        started = loop.time()
        admitted = 0
        for turn in range(turns):
            limiter = sharing[turn % limiters]
            verdicts = await asyncio.gather(*[limiter.admit("acme", "keep")
                                              for _ in range(per_turn)])
            admitted += sum(v.allowed for v in verdicts)
        seconds = loop.time() - started
    finally:
        for client in clients:
            await client.aclose()
    return admitted, seconds, sharing[0].policy("acme", "keep").burst


def test_a_busy_bucket_is_checked_a_slice_ahead_with_few_redis_calls(redis, redis_url):
    before = _script_calls(redis)
    admitted, _seconds, _burst = asyncio.run(_busy(redis_url, 1, 400, 5, "1000000/s"))
    calls = _script_calls(redis) - before
    assert admitted == 2000
    # One call per turn would be 400; slices serve most turns without asking Redis.
    assert calls <= 100


def test_slices_never_admit_beyond_the_limit_across_processes(redis, redis_url):
    # 1000/s with a burst of 1000: slices of up to 50 tokens. Whatever the timing, no more
    # than the burst plus what refilled while the requests came is admitted.
    admitted, seconds, burst = asyncio.run(_busy(redis_url, 2, 300, 10, "1000/s"))
    assert admitted <= burst + 1000 * seconds + 1
    # ... and near the limit a held slice refuses at most a few requests early.
    assert admitted >= burst - 2 * 50


def test_tokens_given_back_are_admitted_again(redis, redis_url):
    # The script's contract, on a bucket of 10 per hour (nothing refills while it runs):
    # tokens a process took and never spent go back with its next check.
    from farm.ingest.ratelimit import GCRA_LUA

    interval = 3600e6 / 10
    script = redis.register_script(GCRA_LUA)
    key = Keys("farm").rate_limit("acme", "given-back")

    def check(wanted: int, given_back: int = 0) -> int:
        return script(keys=[key], args=[repr(interval), repr(interval * 10), wanted,
                                        given_back])[0]

    assert check(10) == 10
    assert check(1) == 0
    assert check(0, given_back=3) == 0
    assert check(5) == 3
