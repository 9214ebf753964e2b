"""What an autoscaler needs to know about the queues, read cheaply from Redis: per lane, the
batches waiting (LLEN), their bytes (MEMORY USAGE with a few sampled elements, an estimate), and
the age of the oldest one (LINDEX of the consuming end, reading only the envelope's `sent_at`).

`read_queue` measures one queue list, `read_queues` several in one pipeline; `merge` sums
several (a lane spread over queue shards), so callers that know more lists than one per lane
combine them without reading anything twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import msgpack

from farm.redis_keys import LANES, Keys

# Elements MEMORY USAGE samples per list: enough for batches of similar size, and constant cost.
MEMORY_SAMPLES = 5


@dataclass(frozen=True)
class QueueSignal:
    """One lane (or one shard of it): batches waiting, their estimated bytes, and the send time
    (unix seconds) of the next batch a worker will take, None when empty or unreadable."""

    batches: int
    bytes: int
    oldest_sent_at: float | None

    def oldest_age(self, now: float | None = None) -> float | None:
        """Seconds since the oldest waiting batch was sent (never negative), or None."""
        if self.oldest_sent_at is None:
            return None
        return max(0.0, (time.time() if now is None else now) - self.oldest_sent_at)


EMPTY = QueueSignal(0, 0, None)


def read_queue(redis, key: str) -> QueueSignal:
    """Measure one queue list in one round trip."""
    return read_queues(redis, [key])[0]


def read_queues(redis, keys: list[str]) -> list[QueueSignal]:
    """Measure queue lists, all in one pipeline (one request per node on a cluster)."""
    pipe = redis.pipeline(transaction=False)
    for key in keys:
        pipe.llen(key)
        pipe.memory_usage(key, samples=MEMORY_SAMPLES)
        pipe.lindex(key, -1)  # workers take from the right: this is the oldest batch
    replies = pipe.execute()
    out = []
    for at in range(0, len(replies), 3):
        batches, size, oldest = replies[at:at + 3]
        out.append(QueueSignal(int(batches or 0), int(size or 0) if batches else 0,
                               sent_at_of(oldest) if oldest is not None else None))
    return out


def merge(signals: list[QueueSignal]) -> QueueSignal:
    """Several lists of one lane as one: sums, and the oldest send time of them all."""
    sent = [s.oldest_sent_at for s in signals if s.oldest_sent_at is not None]
    return QueueSignal(sum(s.batches for s in signals), sum(s.bytes for s in signals),
                       min(sent) if sent else None)


def read_lanes(redis, keys: Keys) -> dict[str, QueueSignal]:
    """Every lane's signal, its queue shards merged; one pipeline for them all."""
    shards = list(keys.all_shards())
    signals = read_queues(redis, [keys.queue(lane, shard) for lane in LANES for shard in shards])
    return {lane: merge(signals[i * len(shards):(i + 1) * len(shards)])
            for i, lane in enumerate(LANES)}


def sent_at_of(raw: bytes) -> float | None:
    """The envelope's `sent_at` (wire v1) without decoding its events; None if the bytes are
    not a map holding a number there (a broken batch waits like any other)."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(raw)
    try:
        for _ in range(unpacker.read_map_header()):
            name = unpacker.unpack()
            if name == "sent_at":
                value = unpacker.unpack()
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                return float(value) if ok else None
            unpacker.skip()
    except Exception:  # msgpack raises several unrelated types for garbage
        return None
    return None
