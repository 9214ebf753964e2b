"""Faults on real processes: SIGKILL a worker, the indexer, both, the whole host; SIGTERM drains.

Each test pushes a backlog of unique alerts, kills processes at random points while it is being
processed, and checks that after recovery every expected eventId is in `alerts` exactly once and
that the accounting counters add up.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time

import pytest

from farm.redis_keys import Keys
from tests.farmproc import FarmProcess, write_config
from tests.test_farm_integration import batch_ids, push_batches

pytestmark = pytest.mark.slow

BATCHES, PER_BATCH = 300, 40
KEYS = Keys("farm")


def expected_ids(batches: list[bytes]) -> set[str]:
    return {f"{b}:{i}" for b in batch_ids(batches) for i in range(PER_BATCH)}


def stored_ids(data_dir) -> list[str]:
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


def check_everything_stored_once(farm, data_dir, batches, redis) -> dict:
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


@pytest.mark.parametrize("victims", [["worker-0"], ["indexer"], ["worker-1", "indexer"]])
def test_killed_processes_lose_nothing(tmp_path, redis, redis_url, victims):
    data = tmp_path / "data"
    config = write_config(tmp_path / "farm.toml", data, redis_url,
                          extra="ring_mb = 1\n")
    with FarmProcess(config, workers=2) as farm:
        batches = push_batches(redis, BATCHES, PER_BATCH)
        wait_until_busy(farm, seed=len(victims))
        pids = farm.children()
        for victim in victims:
            os.kill(pids[victim], signal.SIGKILL)
        check_everything_stored_once(farm, data, batches, redis)
        doc = wait_all_alive(farm)
        restarted = {f"worker-{i}": w["restarts"] for i, w in enumerate(doc["workers"])}
        restarted["indexer"] = doc["indexer"]["restarts"]
        for victim in victims:
            assert restarted[victim] >= 1


def wait_all_alive(farm: FarmProcess, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = farm.status()
        if all(w["alive"] for w in doc["workers"]) and doc["indexer"]["alive"]:
            return doc
        time.sleep(0.1)
    raise TimeoutError(f"not every process came back: {doc}")


def test_a_dead_host_loses_nothing(tmp_path, redis, redis_url):
    """SIGKILL the supervisor and all its children; a new farm requeues their inflight."""
    data = tmp_path / "data"
    config = write_config(tmp_path / "farm.toml", data, redis_url, extra="ring_mb = 1\n")
    farm = FarmProcess(config, workers=2).start()
    batches = push_batches(redis, BATCHES, PER_BATCH)
    try:
        wait_until_busy(farm, seed=7)
    finally:
        farm.kill()
    with FarmProcess(config, workers=2) as again:
        check_everything_stored_once(again, data, batches, redis)


def test_sigterm_drains_and_exits_zero_with_empty_inflight_lists(tmp_path, redis, redis_url):
    data = tmp_path / "data"
    config = write_config(tmp_path / "farm.toml", data, redis_url)
    farm = FarmProcess(config, workers=2).start()
    batches = push_batches(redis, BATCHES, PER_BATCH)
    wait_until_busy(farm, seed=3)
    assert farm.terminate(timeout=60) == 0
    assert not [k for k in redis.scan_iter(match=KEYS.inflight_pattern()) if redis.llen(k)]
    # What was acked is stored; the rest waits in the queue for the next start.
    with FarmProcess(config, workers=2) as again:
        check_everything_stored_once(again, data, batches, redis)


def test_dropped_redis_connections_lose_nothing(tmp_path, redis, redis_url):
    """Every client connection is cut several times mid-run (a network blip): a command may
    have run without its reply arriving, and the workers must not trust their view."""
    data = tmp_path / "data"
    config = write_config(tmp_path / "farm.toml", data, redis_url, extra="ring_mb = 1\n")
    with FarmProcess(config, workers=2) as farm:
        batches = push_batches(redis, BATCHES, PER_BATCH)
        wait_until_busy(farm, seed=11)
        me = redis.client_id()
        for _ in range(5):
            for client in redis.client_list(_type="normal"):
                if int(client["id"]) != me:
                    redis.client_kill_filter(_id=client["id"])
            time.sleep(0.2)
        check_everything_stored_once(farm, data, batches, redis)
