"""[redis] wait_replicas on a real master and replica: kill -9 the master mid-load, promote the
replica, finish the run on it; no alert the gateway accepted (202) is lost. Without it the loss
is measured by bench/failover.py, not asserted: it depends on replication lag."""

from __future__ import annotations

import asyncio

import pytest
import redis as redis_lib

from farm.ingest.batching import Batcher, NotReplicated
from farm.redis_keys import Keys
from tests.support.batches import push_batches
from tests.support.failover import ReplicaPair, failover_run
from tests.support.farms import FarmProcess, write_config
from tests.support.faults import stored_ids
from tests.support.private_redis import private_redis
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def test_with_wait_replicas_a_master_failover_loses_no_accepted_alert(tmp_path):
    # The replica stalls for a second before the master dies, as a lagging replica would: what
    # the master takes meanwhile is lost without wait_replicas (bench/failover.py counts it).
    outcome = failover_run(tmp_path, wait_replicas=1, replica_stall=1.0)
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


def test_a_worker_acks_only_once_a_replica_confirms(tmp_path):
    master = private_redis(tmp_path / "master")
    replica = private_redis(tmp_path / "replica")
    url = master.start()
    client = redis_lib.Redis.from_url(url)
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", url,
                          extra="ring_mb = 1\n")
    text = config.read_text().replace('prefix = "farm"\n',
                                      'prefix = "farm"\nwait_replicas = 1\nwait_timeout_ms = 200\n')
    config.write_text(text)
    try:
        with FarmProcess(config, workers=1) as farm:
            batches = push_batches(client, 5, 10)
            # The store has the alerts, yet no batch is acked: no replica confirms.
            wait_until(lambda: len(stored_ids(tmp_path / "data")) == 50, "the rows", 120)
            wait_until(lambda: "replicas confirmed" in farm.log.read_text(), "the warning", 60)
            assert int(client.get("farm:stats:alerts_received") or 0) == 0
            assert sum(client.llen(k) for k in client.scan_iter(match="farm:inflight:*")) > 0
            replica.start()
            redis_lib.Redis.from_url(replica.url).replicaof("127.0.0.1", master.port)
            doc = farm.wait_drained(expected_received=50, timeout=300)
        assert doc["counters"]["alerts_indexed"] == 50
        assert doc["counters"]["batches_received"] == len(batches)
    finally:
        client.close()
        replica.stop()
        master.stop()
