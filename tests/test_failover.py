"""[redis] wait_replicas on a real master and replica: kill -9 the master mid-load, promote the
replica, finish the run on it; no alert the gateway accepted (202) is lost. Without it the loss
is measured by bench/failover.py, not asserted: it depends on replication lag."""

from __future__ import annotations

import asyncio

import pytest
import redis as redis_lib

from farm.ingest.batching import Batcher, NotReplicated
from farm.redis_keys import Keys
from tests.support.failover import ReplicaPair, failover_run
from tests.support.private_redis import private_redis


def test_with_wait_replicas_a_master_failover_loses_no_accepted_alert(tmp_path):
    outcome = failover_run(tmp_path, wait_replicas=1)
    assert outcome.accepted >= 300
    assert outcome.lost == 0


def test_a_push_no_replica_confirms_is_refused_with_the_reason(tmp_path):
    server = private_redis(tmp_path / "alone")  # a master without replicas
    url = server.start()

    async def push() -> str:
        client = redis_lib.asyncio.Redis.from_url(url)
        batcher = Batcher(client, Keys("farm"), 0, 10, 1 << 20, wait_replicas=1,
                          wait_timeout_ms=50)
        try:
            return await batcher.add("default", "prometheus", "normal", [{"n": 1}], 10)
        finally:
            await client.aclose()

    try:
        with pytest.raises(NotReplicated, match=r"only 0 of the 1 replicas .* send them again"):
            asyncio.run(push())
    finally:
        server.stop()


def test_a_pair_confirms_a_push(tmp_path):
    pair = ReplicaPair(tmp_path).start()
    try:
        client = redis_lib.Redis.from_url(pair.master.url)
        client.lpush("farm:q:normal", b"x")
        assert client.wait(1, 5000) == 1
        client.close()
    finally:
        pair.stop()
