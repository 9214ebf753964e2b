"""What one gateway process holds (Redis client, keys, rate limiter, batcher, backlog gate)
and the steps one webhook request goes through, top-down (each step can refuse with a JSON
{"detail": ...}):
    requests held (503) -> authenticate (401) -> known provider (400) -> declared size (413)
    -> backpressure on both lanes (429) -> body bytes held (503) -> rate limit (429)
    -> read body in time (408, 413, 503) -> parse within limits (400)
    -> backpressure on its lane (429) -> join a batch
    -> 202 once the batch is in Redis (503 if it cannot be stored)
Everything that can refuse without the body comes before reading it, so a flood costs little
more than its headers; a request refused for the farm's or this process's load does not spend a
rate-limit token. Slow headers and connections beyond the cap are refused before the app sees
them (farm/ingest/connections.py). The HTTP side is farm/ingest/app.py.
"""

from __future__ import annotations

import asyncio
import logging
import os

from redis.exceptions import RedisError

from farm.config import Config, ConfigError
from farm.config import load as load_config
from farm.ingest import auth, limits
from farm.ingest.backpressure import Gate
from farm.ingest.batching import EXTRA_KEYS, Batcher, NotReplicated, StoreFailed
from farm.ingest.connections import BODY_RECEIVED, REQUEST_STARTED
from farm.ingest.critical import is_critical
from farm.ingest.errors import Refused
from farm.ingest.incoming import ClientGone, Incoming, refused_as_disconnect
from farm.ingest.ratelimit import RateLimiter
from farm.redis_keys import keys_for
from farm.redisconn import REDIS_TROUBLE, connect_async
from farm.units import parse_bytes
from farm.wire import PROVIDERS

log = logging.getLogger("farm.ingest")

# Retry-After when the farm is behind: long enough for a few backlog checks to see it drain.
BACKPRESSURE_RETRY_SECONDS = 5
# Retry-After when Redis cannot take the batch, or this process is at max_inflight(_bytes).
UNAVAILABLE_RETRY_SECONDS = 1
REDIS_POOL_SIZE = 64
CONFIG_POLL_SECONDS = 2.0


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None



class Gateway:
    """What one gateway process holds: Redis client, keys, limiter, batcher, backlog gate."""

    def __init__(self, cfg: Config, redis_url: str, metrics=None):
        ingest = cfg.ingest
        self.cfg = cfg
        self.redis_url = redis_url
        self.metrics = metrics
        self.keyring = auth.KeyRing(ingest.keys)
        self.allow_anonymous = ingest.allow_anonymous
        self.max_body = parse_bytes(ingest.max_body)
        self.max_depth = ingest.max_depth
        self.max_items = ingest.max_items
        self.max_inflight = ingest.max_inflight
        self.body_seconds = ingest.body_timeout_seconds
        self.request_seconds = ingest.request_timeout_seconds
        self.inflight = 0
        self.budget = limits.BodyBudget(parse_bytes(ingest.max_inflight_bytes),
                                        UNAVAILABLE_RETRY_SECONDS)
        self._watcher: asyncio.Task | None = None
        self.redis = connect_async(redis_url, max_connections=REDIS_POOL_SIZE, timeout=10)
        keys = keys_for(cfg, redis_url)
        self.limiter = RateLimiter(self.redis, cfg.redis.prefix, ingest.rate,
                                   ingest.burst_seconds, ingest.rates)
        self.batcher = Batcher(self.redis, keys, ingest.flush_ms, ingest.batch_events,
                               parse_bytes(ingest.batch_bytes), metrics,
                               cfg.redis.wait_replicas, cfg.redis.wait_timeout_ms)
        self.gate = Gate(self.redis, keys, ingest.high_water, ingest.low_water,
                         ingest.critical_water, ingest.backlog_check_ms,
                         on_change=self._gate_changed)

    def _gate_changed(self, closed: bool, _critical_closed: bool) -> None:
        if self.metrics is not None:
            self.metrics.backpressure.set(1 if closed else 0)

    async def start(self) -> None:
        try:
            await self.redis.ping()
        except REDIS_TROUBLE as exc:
            log.warning("cannot reach Redis at %s yet (%s); requests get 503 until it answers",
                        self.redis_url, exc)
        await self.gate.check_once()
        self.gate.start()
        self._watcher = asyncio.ensure_future(self.watch_config())

    async def stop(self) -> None:
        """Push what is still batched, then let go of Redis."""
        if self._watcher is not None:
            self._watcher.cancel()
        await self.batcher.close()
        await self.gate.stop()
        # The pool was made here and handed in, so the client would leave it open.
        await self.redis.aclose(close_connection_pool=True)

    async def watch_config(self) -> None:
        """Take up [ingest.keys] and [ingest.rates] from the config file when it changes, so
        that `farm keys add` works without a restart."""
        path = self.cfg.source
        if not path:
            return
        seen = _mtime(path)
        while True:
            await asyncio.sleep(CONFIG_POLL_SECONDS)
            mtime = _mtime(path)
            if mtime == seen:
                continue
            seen = mtime
            try:
                cfg = await asyncio.to_thread(load_config, path)
            except ConfigError as exc:
                log.error("config file %s changed but is not valid; keeping the keys and rates "
                          "in use: %s", path, "; ".join(exc.problems))
                continue
            except Exception as exc:  # unreadable now (permissions, bytes): keep watching
                log.error("config file %s changed but cannot be read; keeping the keys and "
                          "rates in use: %s: %s", path, type(exc).__name__, exc)
                continue
            self.keyring = auth.KeyRing(cfg.ingest.keys)
            self.limiter.set_overrides(cfg.ingest.rate, cfg.ingest.rates)
            log.info("took up %d API keys and %d rate overrides from %s", len(self.keyring),
                     len(cfg.ingest.rates), path)

    def tenant_of(self, request: Incoming) -> str:
        key = auth.presented_key(request.headers, request.query_string)
        if key is None:
            if self.allow_anonymous:
                return auth.ANONYMOUS_TENANT
            raise Refused(401, "an API key is required: send it as X-API-KEY, as the password "
                               "of HTTP Basic auth, as a Bearer token or as ?api_key=",
                          "unauthorized", {"WWW-Authenticate": 'Basic realm="farm"'})
        tenant = self.keyring.tenant_for(key)
        if tenant is None:
            raise Refused(401, "the API key is not valid", "unauthorized",
                          {"WWW-Authenticate": 'Basic realm="farm"'})
        return tenant

    async def take(self, request: Incoming, provider: str,
                   hold: limits.Hold) -> tuple[str | None, int, int, dict]:
        """Run one webhook request through every step; returns (batch id, events, body size,
        extra headers). The body's bytes are counted in `hold`, which the caller releases.
        Raises Refused."""
        tenant = request.tenant = self.tenant_of(request)
        if provider not in PROVIDERS:
            raise Refused(400, f"unknown provider type {provider[:60]!r}; this gateway takes "
                               f"{', '.join(PROVIDERS)}", "unknown_provider")
        declared = limits.declared_length(request.headers.get("content-length"), self.max_body)
        if self.gate.critical_closed:  # refused whatever the body holds: do not read it
            raise backpressure({})
        if declared is not None:
            hold.cover(declared)
        try:
            verdict = await self.limiter.admit(tenant, provider)
        except REDIS_TROUBLE as exc:
            if not isinstance(exc, RedisError):  # the client's fault, not Redis's: keep a trace
                log.warning("rate-limit check failed inside the Redis client (%s: %s); "
                            "answered 503", type(exc).__name__, exc)
            raise unavailable(f"cannot check the rate limit in Redis: {exc}") from None
        headers = verdict.headers() if verdict is not None else {}
        if verdict is not None and not verdict.allowed:
            raise Refused(429, f"rate limit of {verdict.policy.per_second:g} requests/s for "
                               f"tenant {tenant!r} and provider {provider!r} exceeded; retry "
                               f"after {headers['Retry-After']}s", "rate_limited", headers)
        body = await self.read_body(request, hold)
        events = await limits.parse_body(request.headers.get("content-type", ""),
                                         request.starlette_headers, body, self.max_depth,
                                         self.max_items)
        if not events:
            return None, 0, len(body), headers
        critical = is_critical(provider, events)
        if self.gate.refuses(critical):
            raise backpressure(headers)
        try:
            batch_id = await self.batcher.add(tenant, provider,
                                              "critical" if critical else "normal", events,
                                              len(body), extras_of(request))
        except NotReplicated as exc:
            raise unavailable(str(exc)) from None
        except StoreFailed as exc:
            raise unavailable(f"the alerts could not be stored in Redis ({exc}); nothing was "
                              f"kept, send them again") from None
        return batch_id, len(events), len(body), headers

    async def read_body(self, request: Incoming, hold: limits.Hold) -> bytes:
        """The body, read within body_timeout_seconds and what request_timeout_seconds leaves
        of the request (counted from its first byte by farm/ingest/connections.py). Refuses
        408 past either, closing the connection since the rest of the body would still be on
        it; and 400 when the client goes away first."""
        state = request.scope.get("state", {})
        try:
            if state.get(BODY_RECEIVED):
                # Already all in hand (a webhook arrives in one read): nothing to wait for.
                return await request.body(self.max_body, hold)
            return await self._read_in_time(request, hold, state.get(REQUEST_STARTED))
        except ClientGone:
            raise refused_as_disconnect() from None

    async def _read_in_time(self, request: Incoming, hold: limits.Hold,
                            started: float | None) -> bytes:
        deadline = asyncio.get_running_loop().time() + self.body_seconds
        limit = ("body_timeout_seconds", self.body_seconds)
        if started is not None and started + self.request_seconds < deadline:
            deadline = started + self.request_seconds
            limit = ("request_timeout_seconds", self.request_seconds)
        try:
            async with asyncio.timeout_at(deadline):
                return await request.body(self.max_body, hold)
        except TimeoutError:
            raise Refused(408, f"the request was not received within [ingest] {limit[0]} "
                               f"({limit[1]:g} s); nothing was kept, send it again",
                          "timeout", {"Connection": "close"}) from None


def backpressure(headers: dict[str, str]) -> Refused:
    return Refused(429, "the farm is behind (queue backlog above [ingest] high_water); "
                        f"retry after {BACKPRESSURE_RETRY_SECONDS}s", "backpressure",
                   {**headers, "Retry-After": str(BACKPRESSURE_RETRY_SECONDS)})


def unavailable(detail: str) -> Refused:
    return Refused(503, detail, "unavailable", {"Retry-After": str(UNAVAILABLE_RETRY_SECONDS)})


def extras_of(request: Incoming) -> tuple:
    """Keep's provider_id and fingerprint query parameters, for the batch envelope."""
    if not request.query_string:
        return ()
    params = request.query_params()
    return tuple((name, params[name]) for name in EXTRA_KEYS if params.get(name))

