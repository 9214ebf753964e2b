"""A farm indexing into a real engine: the engine's JVM is killed mid-run and started again,
and nothing is lost."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from farm.config import load
from farm.sinks.engine_client import Engine
from tests.support.batches import batch_ids, push_batches
from tests.support.engine_store import stored_event_ids
from tests.support.farms import FarmProcess, engine_store_table, write_config

pytestmark = [pytest.mark.engine, pytest.mark.slow]

BATCHES, PER_BATCH = 150, 40


def test_killing_the_engine_mid_run_loses_nothing(tmp_path, redis, redis_url, engine_node):
    if engine_node.node is None:
        pytest.skip("FARM_TEST_ENGINE_URL points at an engine this test cannot restart")
    prefix = f"t{uuid.uuid4().hex[:10]}"
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url,
                          extra=engine_store_table(engine_node.url, prefix, commit_rows=500,
                                             bulk_bytes="256KB"))
    cfg = load(config, env={})
    with FarmProcess(config, workers=2) as farm:
        batches = push_batches(redis, BATCHES, PER_BATCH)
        deadline = time.monotonic() + 60
        while farm.status()["counters"]["alerts_received"] < PER_BATCH * 20:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        engine_node.node.kill()
        time.sleep(2)  # the farm keeps taking batches until its rings fill, then waits
        stalled = farm.status()
        assert stalled["counters"]["alerts_received"] < BATCHES * PER_BATCH
        # The indexer dies too and comes back while the engine is still down: it must wait for
        # the engine (not crash-loop the farm to a stop).
        os.kill(farm.children()["indexer"], signal.SIGKILL)
        time.sleep(3)
        assert farm.status()["indexer"]["alive"]
        engine_node.node.start(timeout=300)
        doc = farm.wait_drained(expected_received=BATCHES * PER_BATCH, timeout=300)
    engine = Engine(cfg.store)
    try:
        ids = stored_event_ids(engine, prefix)
    finally:
        engine.request("DELETE", f"/{prefix}-alerts-*", ok=(200, 404))
        engine.close()
    assert len(ids) == len(set(ids))
    assert set(ids) == {f"{b}:{i}" for b in batch_ids(batches) for i in range(PER_BATCH)}
    assert doc["counters"]["alerts_indexed"] == BATCHES * PER_BATCH
    assert doc["dead_letters"] == 0
