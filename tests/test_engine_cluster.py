"""A farm indexing into a 2-node engine cluster (index replicas 1): one node is killed with
SIGKILL mid-run; the indexer retries on the other until the cluster takes writes again, and at
the end every alert is stored exactly once."""

from __future__ import annotations

import os
import uuid

import pytest

from farm.config import load
from farm.sinks.engine_client import Engine
from tests.support import engine as engine_mod
from tests.support.batches import batch_ids, push_batches
from tests.support.engine_cluster import EngineCluster
from tests.support.engine_store import stored_event_ids
from tests.support.farms import FarmProcess, engine_store_table, write_config
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.engine, pytest.mark.slow]

BATCHES, PER_BATCH = 150, 40


@pytest.fixture
def engine_cluster(tmp_path):
    reason = engine_mod.unavailable_reason()
    if reason:
        if os.environ.get("FARM_REQUIRE_ENGINE") == "1":
            pytest.fail(f"ENGINE TESTS NOT RUN: {reason} (FARM_REQUIRE_ENGINE=1)")
        pytest.skip(f"ENGINE TESTS NOT RUN: {reason}")
    cluster = EngineCluster(tmp_path / "engine", size=2)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def test_killing_one_engine_node_loses_nothing(tmp_path, redis, redis_url, engine_cluster):
    assert engine_cluster.health()["number_of_nodes"] == 2
    prefix = f"t{uuid.uuid4().hex[:10]}"
    store = engine_store_table(",".join(engine_cluster.urls), prefix, replicas=1,
                               commit_rows=500, bulk_bytes="256KB", request_timeout=10)
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url, extra=store)
    with FarmProcess(config, workers=2) as farm:
        batches = push_batches(redis, BATCHES, PER_BATCH)
        wait_until(lambda: farm.status()["counters"]["alerts_received"] >= PER_BATCH * 20,
                   "the farm busy", 120, 0.02)
        victim = engine_cluster.not_manager()
        victim.kill()
        doc = farm.wait_drained(expected_received=BATCHES * PER_BATCH, timeout=600)
    assert doc["counters"]["alerts_indexed"] == BATCHES * PER_BATCH
    assert doc["counters"]["batches_received"] == BATCHES
    survivor = next(node for node in engine_cluster.nodes if node is not victim)
    engine = Engine(load(config, env={"FARM_STORE_URL": survivor.url}).store)
    try:
        ids = stored_event_ids(engine, prefix)
    finally:
        engine.close()
    assert len(ids) == len(set(ids))
    assert set(ids) == {f"{b}:{i}" for b in batch_ids(batches) for i in range(PER_BATCH)}
