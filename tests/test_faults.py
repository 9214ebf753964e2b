"""Faults on real processes: SIGKILL a worker, the indexer, both, the whole host; SIGTERM drains.

Each test pushes a backlog of unique alerts, kills processes at random points while it is being
processed, and checks that after recovery every expected eventId is in `alerts` exactly once and
that the accounting counters add up.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.support.farms import FarmProcess, write_config
from tests.support.faults import (
    KEYS,
    check_everything_stored_once,
    push_backlog,
    wait_all_alive,
    wait_until_busy,
)

pytestmark = pytest.mark.slow

@pytest.mark.parametrize("victims", [["worker-0"], ["indexer"], ["worker-1", "indexer"]])
def test_killed_processes_lose_nothing(tmp_path, redis, redis_url, victims):
    data = tmp_path / "data"
    config = write_config(tmp_path / "farm.toml", data, redis_url,
                          extra="ring_mb = 1\n")
    with FarmProcess(config, workers=2) as farm:
        batches = push_backlog(redis)
        wait_until_busy(farm, seed=len(victims))
        pids = farm.children()
        for victim in victims:
            os.kill(pids[victim], signal.SIGKILL)
        check_everything_stored_once(farm, data, batches, redis)
        doc = wait_all_alive(farm, killed={pids[victim] for victim in victims})
        restarted = {f"worker-{i}": w["restarts"] for i, w in enumerate(doc["workers"])}
        restarted["indexer"] = doc["indexer"]["restarts"]
        # Every victim runs again as a new process (wait_all_alive). A worker killed with the
        # indexer may still read as alive when the supervisor handles the indexer's death; it
        # is then stopped and started with the pipeline, not counted on its own.
        for victim in (["indexer"] if "indexer" in victims else victims):
            assert restarted[victim] >= 1


def test_a_dead_host_loses_nothing(tmp_path, redis, redis_url):
    """SIGKILL the supervisor and all its children; a new farm requeues their inflight."""
    data = tmp_path / "data"
    config = write_config(tmp_path / "farm.toml", data, redis_url, extra="ring_mb = 1\n")
    farm = FarmProcess(config, workers=2).start()
    batches = push_backlog(redis)
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
    batches = push_backlog(redis)
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
        batches = push_backlog(redis)
        wait_until_busy(farm, seed=11)
        me = redis.client_id()
        for _ in range(5):
            for client in redis.client_list(_type="normal"):
                if int(client["id"]) != me:
                    redis.client_kill_filter(_id=client["id"])
            time.sleep(0.2)
        check_everything_stored_once(farm, data, batches, redis)
