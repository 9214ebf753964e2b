"""Backpressure: refuse new work while the queue backlog in Redis is above its high-water mark.

Measured periodically ([ingest] backlog_check_ms), never per request: one pipelined round trip
reads both lanes' length (batches) and memory use (bytes). Refusal starts when the backlog of
both lanes reaches high_water and stops when it falls below low_water (hysteresis, so the gate
does not flap). Meanwhile requests holding a critical alert still enter the critical lane until
that lane alone holds critical_water.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from farm.config.ingest import parse_watermark
from farm.redis_keys import LANES, Keys

log = logging.getLogger("farm.ingest")


@dataclass
class Backlog:
    """One measurement: batches and bytes per lane."""

    batches: dict[str, int]
    bytes: dict[str, int]

    def total(self, unit: str) -> int:
        return sum((self.batches if unit == "batches" else self.bytes).values())

    def lane(self, lane: str, unit: str) -> int:
        return (self.batches if unit == "batches" else self.bytes)[lane]


class Gate:
    """`refuses(critical)` says whether a request must get 429 now."""

    def __init__(self, redis, keys: Keys, high_water: str, low_water: str, critical_water: str,
                 check_ms: int, on_change=None):
        self.redis = redis
        self.keys = keys
        self.high = parse_watermark(high_water)
        self.low = parse_watermark(low_water)
        self.critical = parse_watermark(critical_water)
        self.interval = check_ms / 1000
        self.on_change = on_change
        self.closed = False            # normal requests refused
        self.critical_closed = False   # critical requests refused too
        self.last: Backlog | None = None
        self.last_ok = 0.0             # monotonic time of the last successful measurement
        self.error: str | None = None
        self._task: asyncio.Task | None = None

    def refuses(self, critical: bool) -> bool:
        return self.critical_closed if critical else self.closed

    async def measure(self) -> Backlog:
        pipe = self.redis.pipeline(transaction=False)
        queues = [(lane, self.keys.queue(lane, shard)) for lane in LANES
                  for shard in self.keys.all_shards()]
        for _, queue in queues:
            pipe.llen(queue)
        for _, queue in queues:
            pipe.memory_usage(queue)
        got = await pipe.execute()
        batches, size = dict.fromkeys(LANES, 0), dict.fromkeys(LANES, 0)
        for (lane, _), n, used in zip(queues, got[:len(queues)], got[len(queues):],
                                      strict=True):
            batches[lane] += n
            size[lane] += used or 0
        return Backlog(batches=batches, bytes=size)

    def update(self, backlog: Backlog) -> None:
        """Apply one measurement to the gate's state."""
        self.last = backlog
        was = (self.closed, self.critical_closed)
        high, high_unit = self.high
        low, low_unit = self.low
        if not self.closed and backlog.total(high_unit) >= high:
            self.closed = True
        elif self.closed and backlog.total(low_unit) < low:
            self.closed = False
        bound, unit = self.critical
        self.critical_closed = self.closed and backlog.lane("critical", unit) >= bound
        if (self.closed, self.critical_closed) != was:
            log.warning("backpressure %s: backlog %d batches, %d bytes (high_water %s, "
                        "low_water %s)", "on" if self.closed else "off",
                        backlog.total("batches"), backlog.total("bytes"), _fmt(self.high),
                        _fmt(self.low))
            if self.on_change is not None:
                self.on_change(self.closed, self.critical_closed)

    async def check_once(self) -> None:
        try:
            self.update(await self.measure())
        except Exception as exc:  # keep the last state; the next check may succeed
            if self.error is None:
                log.warning("cannot measure the queue backlog: %s", exc)
            self.error = str(exc) or type(exc).__name__
            return
        if self.error is not None:
            log.info("queue backlog measured again")
        self.error = None
        self.last_ok = time.monotonic()

    async def run(self) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


def _fmt(mark: tuple[int, str]) -> str:
    return f"{mark[0]} {mark[1]}"
