"""The console's header: the farm's account (the Redis counters /metrics exports as
farm_stat_*) and rates computed from successive readings."""

from __future__ import annotations

import threading
import time
from collections import deque

from farm import queue
from farm.redis_keys import Keys

SHOWN = (("alerts_received", "received"), ("alerts_indexed", "indexed"),
         ("alerts_duplicate", "duplicate"), ("alerts_dead", "dead"),
         ("alerts_maintenance", "maintenance"), ("events_empty", "empty"))
RATE_WINDOW_SECONDS = 10.0
KEEP_SECONDS = 60.0


class AccountWatch:
    """Readings of the account; each `read` is one MGET and gives the counters with their
    per-second rates over the last RATE_WINDOW_SECONDS (or since the oldest reading kept)."""

    def __init__(self, keys: Keys):
        self.keys = keys
        self.readings: deque[tuple[float, dict[str, int]]] = deque()
        self.lock = threading.Lock()

    def read(self, redis) -> dict:
        counters = queue.read_stats(redis, self.keys)
        now = time.monotonic()
        with self.lock:
            while self.readings and now - self.readings[0][0] > KEEP_SECONDS:
                self.readings.popleft()
            base = next((r for r in reversed(self.readings)
                         if now - r[0] >= RATE_WINDOW_SECONDS), None)
            if base is None and self.readings and now - self.readings[0][0] >= 1.0:
                base = self.readings[0]
            self.readings.append((now, counters))
        figures = []
        for name, label in SHOWN:
            rate = None
            if base is not None:
                rate = max(0.0, (counters[name] - base[1].get(name, 0)) / (now - base[0]))
            figures.append({"name": name, "label": label, "value": counters[name],
                            "rate": rate})
        dead_letters = redis.llen(self.keys.dlq)
        return {"figures": figures, "dead_letters": dead_letters}
