"""Per tenant and provider rate limits, shared by every gateway process and host on one Redis.

A GCRA token bucket in a Lua script: one key per (tenant, provider) holding the bucket's
"theoretical arrival time", one round trip per check. Requests for the same bucket that arrive
in the same event-loop turn are checked together (the script admits k of n), so a busy gateway
makes one Redis call per bucket per turn rather than one per request.

A busy bucket is also checked ahead of its requests: each check asks for a slice of extra
tokens, as many as this process admitted for the bucket in the previous SLICE_SECONDS, at most
SLICE_SECONDS of the bucket's rate and a twentieth of its burst. Its next requests spend the
slice without asking Redis. Tokens are only ever spent after Redis admitted them, so the limit
is never exceeded, however many processes share the bucket. What a slice leaves unspent after
SLICE_SECONDS goes back to the bucket with this process's next check of it (the script moves the
bucket's time back). The price: near the limit, a request may be refused while another process
holds a slice, at most that slice's few tokens for at most SLICE_SECONDS. Buckets smaller than
20 requests or slower than 20 requests/s never get a slice, so they are exact.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field

from farm.redis_keys import Keys
from farm.units import parse_request_rate

# KEYS[1]: the bucket. ARGV: emission interval (us), tolerance = burst x interval (us), wanted,
# tokens given back (admitted earlier, never spent).
# Returns {admitted, remaining, retry_after_us, reset_us}. Redis's clock, so hosts agree.
# The bucket holds its theoretical arrival time (tat) as "<whole us>.<ns>", read in two parts
# and worked on as the debt tat - now: a double holds today's time in us only to a quarter of a
# us, and those roundings would add up over the calls. Counts get a millionth of a request of
# slack, because interval x burst / interval is not always burst in floating point (127/s
# would admit 126).
GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local debt = 0
local stored = redis.call('GET', KEYS[1])
if stored then
  local whole, fraction = string.match(stored, '^(%d+)(%.?%d*)$')
  if whole then
    debt = (tonumber(whole) - now) + (tonumber('0' .. fraction) or 0)
  end
end
local given_back = tonumber(ARGV[4])
debt = debt - given_back * interval
if debt < 0 then debt = 0 end
local admitted = math.floor((tolerance - debt) / interval + 1e-6)
if admitted > wanted then admitted = wanted end
if admitted < 0 then admitted = 0 end
if admitted > 0 or given_back > 0 then
  debt = debt + admitted * interval
  local whole = math.floor(debt)
  redis.call('SET', KEYS[1],
             string.format('%.0f.%09d', now + whole,
                           math.min(999999999, math.floor((debt - whole) * 1e9))),
             'PX', math.ceil(debt / 1000) + 1)
end
local remaining = math.floor((tolerance - debt) / interval + 1e-6)
if remaining < 0 then remaining = 0 end
local retry = debt + interval - tolerance
if retry < 0 then retry = 0 end
return {admitted, remaining, math.ceil(retry), math.ceil(debt)}
"""


SLICE_SECONDS = 0.05


@dataclass(frozen=True)
class Policy:
    per_second: float
    burst: int
    slice_cap: int = field(init=False)   # most tokens taken ahead of requests

    def __post_init__(self) -> None:
        cap = int(min(self.burst / 20, self.per_second * SLICE_SECONDS))
        object.__setattr__(self, "slice_cap", max(0, cap))

    @property
    def window(self) -> float:
        return self.burst / self.per_second


@dataclass
class Slice:
    """One bucket's tokens in this process: admitted by Redis, not spent yet."""

    tokens: int = 0
    expires: float = 0.0       # loop time when unspent tokens must go back
    give_back: int = 0         # tokens of an expired slice, returned with the next check
    remaining: int = 0         # the bucket's remaining and reset at the last check
    reset: float = 0.0
    checked: float = 0.0
    window_start: float = 0.0  # this process's demand for the bucket, per SLICE_SECONDS
    demand: int = 0
    last_demand: int = 0

    def count(self, now: float) -> None:
        if now - self.window_start >= SLICE_SECONDS:
            self.last_demand = self.demand if now - self.window_start < 2 * SLICE_SECONDS else 0
            self.demand = 0
            self.window_start = now
        self.demand += 1

    def spend(self, now: float) -> bool:
        """Spend one token of the slice; False when there is none (left) to spend."""
        if not self.tokens:
            return False
        if now >= self.expires:
            self.give_back += self.tokens
            self.tokens = 0
            return False
        self.tokens -= 1
        return True


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    policy: Policy
    remaining: int
    retry_after: float  # seconds until one more request would be admitted
    reset: float        # seconds until the bucket is full again

    def headers(self) -> dict[str, str]:
        """RateLimit-* headers (IETF httpapi draft), plus Retry-After when refused."""
        headers = {
            "RateLimit-Limit": str(self.policy.burst),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.reset)),
            "RateLimit-Policy": f"{self.policy.burst};w={max(1, round(self.policy.window))}",
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers


class RateLimiter:
    """`await admit(tenant, provider)` -> Verdict, or None when that bucket is unlimited.
    Raises redis.RedisError when Redis cannot be asked."""

    def __init__(self, redis, prefix: str, rate: str, burst_seconds: float,
                 overrides: dict[str, str]):
        self.redis = redis
        self.keys = Keys(prefix)
        self.burst_seconds = burst_seconds
        self.set_overrides(rate, overrides)
        self._script = redis.register_script(GCRA_LUA)
        self._waiting: dict[tuple[str, str], list[asyncio.Future]] = {}
        self._slices: dict[tuple[str, str], Slice] = {}
        self._tasks: set[asyncio.Task] = set()

    def set_overrides(self, rate: str, overrides: dict[str, str]) -> None:
        """(Re)load the default rate and the [ingest.rates] table."""
        self.default = self._policy(rate)
        self.overrides = {name: self._policy(text) for name, text in overrides.items()}
        self._policies: dict[tuple[str, str], Policy | None] = {}

    def _policy(self, text: str) -> Policy | None:
        if text.strip().lower() == "off":
            return None
        per_second = parse_request_rate(text)
        return Policy(per_second, max(1, round(per_second * self.burst_seconds)))

    def policy(self, tenant: str, provider: str) -> Policy | None:
        key = (tenant, provider)
        if key not in self._policies:
            for name in (f"{tenant}/{provider}", f"{tenant}/*"):
                if name in self.overrides:
                    self._policies[key] = self.overrides[name]
                    break
            else:
                self._policies[key] = self.default
        return self._policies[key]

    async def admit(self, tenant: str, provider: str) -> Verdict | None:
        policy = self.policy(tenant, provider)
        if policy is None:
            return None
        key = (tenant, provider)
        loop = asyncio.get_running_loop()
        now = loop.time()
        share = self._slices.get(key)
        if share is None:
            share = self._slices[key] = Slice()
        share.count(now)
        if share.spend(now):
            return Verdict(True, policy, share.remaining + share.tokens, 0.0,
                           max(0.0, share.reset - (now - share.checked)))
        waiting = self._waiting.get(key)
        if waiting is None:
            waiting = self._waiting[key] = []
            loop.call_soon(self._ask, key, policy)
        future = loop.create_future()
        waiting.append(future)
        return await future

    def _ask(self, key: tuple[str, str], policy: Policy) -> None:
        futures = self._waiting.pop(key)
        task = asyncio.ensure_future(self._check(key, policy, futures))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _check(self, key, policy: Policy, futures: list[asyncio.Future]) -> None:
        interval = 1e6 / policy.per_second
        share = self._slices[key]
        extra = min(policy.slice_cap, max(share.demand, share.last_demand))
        give_back, share.give_back = share.give_back, 0
        try:
            admitted, remaining, retry_us, reset_us = await self._script(
                keys=[self.keys.rate_limit(*key)],
                args=[repr(interval), repr(interval * policy.burst), len(futures) + extra,
                      give_back])
        except Exception as exc:  # every waiter must hear about it, whatever it is
            # Whether the script ran is unknown: the tokens to give back are dropped, which
            # can only make the limit stricter.
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
            return
        self._keep_slice(share, admitted - len(futures), remaining, reset_us)
        for n, future in enumerate(futures):
            if future.done():
                continue
            allowed = n < admitted
            left = remaining + (admitted - 1 - n) if allowed else 0
            future.set_result(Verdict(allowed, policy, left, retry_us / 1e6, reset_us / 1e6))

    @staticmethod
    def _keep_slice(share: Slice, tokens: int, remaining: int, reset_us: int) -> None:
        """Keep what Redis admitted beyond this turn's requests for the next ones."""
        now = asyncio.get_running_loop().time()
        share.give_back += share.tokens   # a slice still held goes back with the next check
        share.tokens = max(0, tokens)
        share.expires = now + SLICE_SECONDS
        share.remaining = remaining
        share.reset = reset_us / 1e6
        share.checked = now

