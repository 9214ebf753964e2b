"""What the fault tests share: a backlog of unique alerts to kill processes over, a random
moment while it is being worked on, and the check that after recovery every alert was stored
exactly once with counters that add up (the farm's SQLite store)."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

from farm.redis_keys import Keys
from tests.support.batches import batch_ids, push_batches
from tests.support.farms import FarmProcess

# Big enough that a farm is still busy with it when a test strikes.
BATCHES, PER_BATCH = 300, 40
KEYS = Keys("farm")


def push_backlog(redis) -> list[bytes]:
    """BATCHES batches of PER_BATCH unique alerts onto the farm's queue; returns them."""
    return push_batches(redis, BATCHES, PER_BATCH)


def expected_ids(batches: list[bytes]) -> set[str]:
    return {f"{b}:{i}" for b in batch_ids(batches) for i in range(PER_BATCH)}


def stored_ids(data_dir: Path) -> list[str]:
    db = sqlite3.connect(data_dir / "farm.db")
    try:
        return [row[0] for row in db.execute("SELECT eventId FROM alerts")]
    finally:
        db.close()


def wait_until_busy(farm: FarmProcess, seed: int) -> None:
    """Return at a random point while the backlog is being worked on."""
    rng = random.Random(seed)
    target = rng.randint(PER_BATCH * 10, BATCHES * PER_BATCH // 3)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if farm.status()["counters"]["alerts_received"] >= target:
            return
        time.sleep(0.01)
    raise TimeoutError("the farm never got busy")


def check_everything_stored_once(farm: FarmProcess, data_dir: Path, batches: list[bytes],
                                 redis) -> dict:
    """Wait for the farm to drain the backlog, then check every alert is in `alerts` once, the
    counters count each batch once and no inflight list is left; returns the final status."""
    doc = farm.wait_drained(expected_received=len(batches) * PER_BATCH, timeout=180)
    ids = stored_ids(data_dir)
    assert len(ids) == len(set(ids))
    assert set(ids) == expected_ids(batches)
    counters = doc["counters"]
    # Counters are incremented in the same transaction that acks a batch: exactly once each.
    assert counters["alerts_received"] == len(batches) * PER_BATCH
    assert counters["alerts_indexed"] == len(batches) * PER_BATCH
    assert counters["batches_received"] == len(batches)
    assert not [k for k in redis.scan_iter(match=KEYS.inflight_pattern()) if redis.llen(k)]
    return doc


def wait_all_alive(farm: FarmProcess, timeout: float = 30, killed: set[int] = frozenset()
                   ) -> dict:
    """Wait until every worker and the indexer are alive again, and none of them is a process
    in `killed` (a pid just sent SIGKILL may still read as alive until the supervisor has seen
    its death and started its successor); returns that status."""
    deadline = time.monotonic() + timeout
    doc: dict = {}
    while time.monotonic() < deadline:
        doc = farm.status()
        parts = [*doc["workers"], doc["indexer"]]
        if all(p["alive"] and p["pid"] not in killed for p in parts):
            return doc
        time.sleep(0.1)
    raise TimeoutError(f"not every process came back: {doc}")
