"""The HTTP target: each notification is one `POST /alerts/event/{provider}` (Keep's webhook
route) to the farm's ingest gateway, with the API key in `X-API-KEY`.

Requests follow the same schedule as the Redis target, at most `concurrency` at a time, over
keep-alive connections of loadgen/http_client.py (each request one pre-rendered write, each
answer parsed by httptools; aiohttp cost about 3x the CPU, httpx about 50x). A 429
or 503 is retried after its Retry-After (the slot stays taken meanwhile, so backpressure slows
the whole producer down, as it should); a request refused for good (any other 4xx/5xx, or
MAX_RETRIES retries) is counted by status with the first refusal's detail, and the verifier
reports its alerts as refused.

A request is re-sent after a network error only when the connection could not be made, so
that it was never sent. After a timeout or a connection lost once it was sent, the gateway may
have stored it: sending it again would store a second copy in another batch, which the verifier
would misread. Such a request is counted as an "unknown outcome" and reported.
"""

from __future__ import annotations

import asyncio
import math
import time

import orjson

from loadgen.http_client import Client, NotSent, Unanswered
from loadgen.pacing import Pacer
from loadgen.producer_spec import Result, Stat

MAX_RETRIES = 30
CONNECT_RETRIES = 5
REFUSED = "-"        # batch id logged for a request the gateway never took
UNKNOWN = "?"        # batch id logged for a request sent without an answer
# Idle connections are closed before the gateway closes them ([ingest] keepalive_timeout_seconds,
# 5 s by default), so that a request never goes out on a connection the gateway is closing: its
# outcome would be unknown.
KEEPALIVE_SECONDS = 3.0


def retry_after(value: bytes | None) -> float:
    """Seconds the server asked us to wait (Retry-After in seconds; 1 if absent or a date)."""
    try:
        return min(60.0, max(0.0, float(value or b"1")))
    except ValueError:
        return 1.0


class HttpProducer:
    def __init__(self, spec, stream, stats, log, result: Result):
        self.spec = spec
        self.stream = stream
        self.stats = stats
        self.log = log
        self.result = result
        self.pacer = Pacer(0.0)

    def run(self, start: float, stop) -> None:
        try:
            from uvloop import new_event_loop
        except ImportError:  # the standard loop works, at some more CPU per request
            new_event_loop = None
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(self._run(start, stop))

    async def _run(self, start: float, stop) -> None:
        spec, stream, http = self.spec, self.stream, self.spec.http
        headers = {"Content-Type": "application/json", "User-Agent": "farm-loadgen"}
        if http.api_key:
            headers["X-API-KEY"] = http.api_key
        client = Client(http.url, headers, http.concurrency, KEEPALIVE_SECONDS, http.timeout)
        self.heads = {p: client.request_head(f"/alerts/event/{p}") for p in spec.population.mix}
        self.pacer = pacer = Pacer(start, paced=spec.stream.profile.multiplier is not None)
        end = start + spec.duration if spec.duration else math.inf
        total = spec.total if spec.total else math.inf
        by_bytes = spec.stream.unit == "bytes"
        done = 0.0
        slots = asyncio.Semaphore(http.concurrency)
        pending: set[asyncio.Task] = set()
        if self.log is not None:
            self.log.fingerprints = {}
        try:
            while True:
                now = time.time()
                if now >= end or done >= total or stop.is_set():
                    break
                wait = pacer.delay(stream.t, now)
                if wait > 0:
                    await asyncio.sleep(min(wait, 0.02))
                    continue
                await slots.acquire()
                group = stream.next()
                done += group.size if by_bytes else group.alerts
                if self.log is not None:
                    self.log.fingerprints.setdefault(group.index, group.fingerprints)
                task = asyncio.create_task(self._post(
                    client, slots, group.provider, group.current[0], group.size, group.alerts,
                    group.event_alerts, group.keys))
                pending.add(task)
                task.add_done_callback(pending.discard)
            if pending:
                await asyncio.wait(pending)
        finally:
            client.close()

    async def _post(self, client: Client, slots: asyncio.Semaphore, provider: str,
                    body: bytes, size: int, alerts: int, event_alerts, keys) -> None:
        try:
            attempts = 0
            while True:
                sent_at = time.time()
                try:
                    response = await client.post(self.heads[provider], body)
                except NotSent as exc:
                    attempts += 1
                    if attempts > CONNECT_RETRIES:
                        self._refused("unreachable", str(exc), sent_at, provider,
                                      event_alerts, keys)
                        return
                    await asyncio.sleep(min(5.0, 0.2 * 2 ** attempts))
                    continue
                except Unanswered as exc:
                    self._unknown(f"{type(exc).__name__}: {exc}", sent_at, provider,
                                  event_alerts, keys)
                    return
                status, answer = response.status, response.body
                wait = retry_after(response.retry_after)
                if status in (429, 503):
                    attempts += 1
                    self.result.retried += 1
                    if attempts > MAX_RETRIES:
                        self._refused(str(status), f"still {status} after {MAX_RETRIES} "
                                      f"retries: {answer[:200].decode(errors='replace')}",
                                      sent_at, provider, event_alerts, keys)
                        return
                    await asyncio.sleep(wait)
                    continue
                if status >= 300:
                    self._refused(str(status), answer[:200].decode(errors="replace"), sent_at,
                                  provider, event_alerts, keys)
                    return
                self._accepted(answer, sent_at, provider, body, size, alerts, event_alerts,
                               keys)
                return
        finally:
            slots.release()

    def _accepted(self, answer: bytes, sent_at, provider, body, size, alerts, event_alerts,
                  keys) -> None:
        stats = self.stats
        stats[Stat.PAYLOAD] += size
        stats[Stat.ALERTS] += alerts
        stats[Stat.NOTIFICATIONS] += 1
        stats[Stat.BATCHES] += 1
        stats[Stat.WIRE] += len(body)
        stats[Stat.LAST] = time.time()
        if self.log is None:
            return
        try:
            batch = orjson.loads(answer).get("batch")
        except (orjson.JSONDecodeError, AttributeError):
            batch = None
        # Without a batch id in the answer the alerts cannot be found again; the verifier
        # reports them as unverifiable rather than guessing.
        self.log.add_batch(sent_at, provider, event_alerts, (), keys,
                           batch_id=batch if isinstance(batch, str) else "")

    def _unknown(self, detail: str, sent_at, provider, event_alerts, keys) -> None:
        self.result.unknown += 1
        if self.result.unknown_detail is None:
            self.result.unknown_detail = detail
        if self.log is not None:
            self.log.add_batch(sent_at, provider, event_alerts, (), keys, batch_id=UNKNOWN)

    def _refused(self, status: str, detail: str, sent_at, provider, event_alerts,
                 keys) -> None:
        self.result.refused[status] = self.result.refused.get(status, 0) + 1
        if self.result.refusal is None:
            self.result.refusal = f"{status}: {detail}"
        if self.log is not None:
            self.log.add_batch(sent_at, provider, event_alerts, (), keys, batch_id=REFUSED)
