"""The safety net under the registries: find inflight lists that no registry names by scanning
the keyspace, a few SCAN pages per step, so that a supervisor's loop never stalls on a keyspace
of millions of dedup keys (a full scan of ten million keys takes Redis about ten seconds).

The registries (farm/queue.py: each shard's worker set; farm/nodes.py: the node index) are how
inflight lists are found. A list can escape them in two ways only: it was written by a farm from
before them, or a worker whose host was presumed dead (and so dropped from its shard's set)
took a batch before noticing its lost lease, and then its host died. A completed pass adds
every list it found to its registry, where the regular recovery handles it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from farm.nodes import index_key
from farm.notify.outbox import NotifyKeys
from farm.redis_keys import Keys


def scan_pages(redis, pattern: str, count: int) -> Iterator[list]:
    """The keys matching pattern, one SCAN reply at a time (on a cluster, every master's)."""
    primaries = redis.get_primaries() if hasattr(redis, "get_primaries") else [None]
    for node in primaries:
        cursor = 0
        while True:
            if node is None:
                cursor, page = redis.scan(cursor, match=pattern, count=count)
            else:
                cursors, page = redis.scan(cursor, match=pattern, count=count, target_nodes=node)
                cursor = cursors[node.name]
            yield page
            if not cursor:
                break


class KeyspaceSweep:
    """A pass over the keyspace every `every` seconds, at most `pages` SCAN replies per step."""

    def __init__(self, redis, keys: Keys, every: float, pages: int = 10, count: int = 1000):
        self.redis = redis
        self.keys = keys
        self.every = every
        self.pages = pages
        self.count = count
        self.next_pass = time.monotonic() + every
        self._scan: Iterator[list] | None = None
        self._workers: set[tuple[str, int]] = set()
        self._senders: set[str] = set()
        # per shard, how its notify senders' and its workers' inflight lists start
        self._heads = [(NotifyKeys(keys.shard_prefix(shard)).inflight(""), keys.inflight("", shard))
                       for shard in keys.all_shards()]

    def run_pass(self) -> tuple[int, int]:
        """A whole pass now, at once (at start-up, before anything is recovered); returns what
        step() returns at the end of a pass."""
        now = time.monotonic()
        self.next_pass = now
        while (found := self.step(now)) is None:
            pass
        return found

    def step(self, now: float | None = None) -> tuple[int, int] | None:
        """Scan a few pages; at the end of a pass, register what it found and return how many
        (worker lists, notify lists) were not registered. Redis errors are the caller's: the
        pass starts over at its next step."""
        now = time.monotonic() if now is None else now
        if self._scan is None:
            if now < self.next_pass:
                return None
            self._scan = scan_pages(self.redis, f"{self.keys.prefix}:*inflight:*", self.count)
            self._workers, self._senders = set(), set()
        try:
            for _ in range(self.pages):
                self._sort(next(self._scan))
            return None
        except StopIteration:
            self._scan = None
            self.next_pass = now + self.every
            return self._register()
        except BaseException:
            self._scan = None
            raise

    def _sort(self, page: list) -> None:
        for key in page:
            key = key.decode() if isinstance(key, bytes) else key
            for sender_head, worker_head in self._heads:
                if key.startswith(sender_head):
                    self._senders.add(key[len(sender_head):])
                elif key.startswith(worker_head):
                    self._workers.add(self.keys.of_inflight(key))

    def _register(self) -> tuple[int, int]:
        pipe = self.redis.pipeline(transaction=False)
        for worker_id, shard in sorted(self._workers):
            pipe.sadd(self.keys.workers(shard), worker_id)
        for node in sorted(self._senders):
            # a node missing from the index is taken as dead (score 0): recover_dead_senders
            # still checks its record before it moves anything
            pipe.zadd(index_key(self.keys.prefix), {node: 0}, nx=True)
        replies = pipe.execute()
        workers = sum(replies[:len(self._workers)])
        return workers, sum(replies[len(self._workers):])
