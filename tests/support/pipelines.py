"""One batch at a time through the real pipeline on a real Redis, reading back what it decided
(dedup letters n/p/f from the memo the dedup script writes) and what it handed on."""

from __future__ import annotations

import itertools

import msgpack

from farm import config
from farm.pipeline import Outcome, Pipeline, unpack_record
from farm.redis_keys import Keys
from farm.wire import encode_batch

PREFIX = "t"
_ids = itertools.count()


def make_pipeline(redis, **sections: dict) -> Pipeline:
    """A pipeline on redis under PREFIX, with config sections changed as in `sections`."""
    cfg = config.load(None, env={}, overrides=sections)
    return Pipeline(cfg, redis, Keys(PREFIX))


class Run:
    """Sends batches through one pipeline and reads back what was decided."""

    def __init__(self, redis, pipeline: Pipeline):
        self.redis = redis
        self.pipeline = pipeline
        self.sent_at = 1_741_076_400.0

    def batch(self, events: list, provider: str = "prometheus", tenant: str = "default",
              batch_id: str | None = None) -> bytes:
        self.sent_at += 60
        return encode_batch(events, provider, tenant, batch_id or f"b{next(_ids)}",
                            self.sent_at)

    def send(self, events: list, **kw) -> str:
        return self.process(self.batch(events, **kw))

    def process(self, raw: bytes) -> str:
        self.last = self.pipeline.process(raw)
        return "".join(self.redis.get(Keys(PREFIX).decided(m)).decode()
                       for m in self.last.memo_ids)


def history_rows(outcome: Outcome) -> list[tuple]:
    """The history rows of every record a processed batch handed on."""
    rows = []
    for record in outcome.records:
        _, _, body = unpack_record(record)
        history, _, _ = msgpack.unpackb(body)
        rows += history
    return rows


def dead_letters(outcome: Outcome) -> list[dict]:
    """The dead letters a processed batch produced, decoded."""
    return [msgpack.unpackb(raw, strict_map_key=False) for raw in outcome.dead_letters]
