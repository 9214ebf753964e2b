"""Many farm hosts on a real Redis Cluster (3 masters, 3 replicas). [redis] wait_replicas there:
the gateway's WAIT goes to the master that took the push, a worker's WAIT to every master it
wrote to. Then three farm nodes under `farm-loadgen --verify` (through one gateway), one whole
node SIGKILLed and a Redis master SIGKILLed (its replica takes over): the account is exact."""

from __future__ import annotations

import asyncio
import os
import signal
from contextlib import contextmanager

import pytest

from farm.ingest.batching import Batcher, NotReplicated
from farm.redis_keys import Keys
from farm.redisconn import connect, connect_async, wait_replicas
from tests.support.cluster_hosts import hosts_run
from tests.support.redis_cluster import RedisCluster

pytestmark = pytest.mark.slow


@contextmanager
def replicas_stopped(cluster: RedisCluster):
    """SIGSTOP every replica (as a replica lagging behind would be), briefly: well under the
    cluster-node-timeout, so no failover starts."""
    masters = cluster.master_indexes()
    assert len(masters) == cluster.masters
    replicas = [proc.pid for i, (_, proc) in enumerate(cluster.nodes) if i not in masters]
    for pid in replicas:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in replicas:
            os.kill(pid, signal.SIGCONT)


def test_a_push_waits_on_the_master_that_took_it(redis_cluster, redis_cluster_url):
    async def push(batcher: Batcher, times: int) -> list:
        outcomes = []
        for n in range(times):  # the shards in turn: every master takes some
            try:
                outcomes.append(await batcher.add("default", "keep", "normal", [{"n": n}], 9))
            except NotReplicated as exc:
                outcomes.append(exc)
        return outcomes

    async def run() -> tuple[list, list]:
        client = connect_async(redis_cluster_url)
        try:
            await client.initialize()
            # The first push goes to a master other than the client's default node (where an
            # unnamed WAIT would go, over a connection that wrote nothing yet).
            default = client.get_default_node()
            keys = next(k for k in (Keys(f"wgw{n}", shards=6, cluster=True) for n in range(200))
                        if client.get_node_from_key(k.queue("normal", k.all_shards()[0]))
                        != default)
            with replicas_stopped(redis_cluster):
                refused = await push(Batcher(client, keys, 0, 10, 1 << 20, wait_replicas=1,
                                             wait_timeout_ms=100), 6)
            accepted = await push(Batcher(client, keys, 0, 10, 1 << 20, wait_replicas=1,
                                          wait_timeout_ms=5000), 6)
        finally:
            await client.aclose()
        return accepted, refused

    accepted, refused = asyncio.run(run())
    assert not any(isinstance(o, Exception) for o in accepted), accepted
    assert all(isinstance(o, NotReplicated) for o in refused), refused


def test_a_workers_wait_covers_each_master_it_wrote_to(redis_cluster, redis_cluster_url):
    client = connect(redis_cluster_url)
    try:
        default = client.get_default_node()
        # a key on a master other than the client's default node, where a plain WAIT goes
        key = next(k for k in (f"wk:{n}" for n in range(100))
                   if client.get_node_from_key(k) != default)
        client.lpush(key, b"x")
        assert wait_replicas(client, 1, 2000) == 1
        with replicas_stopped(redis_cluster):
            client.lpush(key, b"y")
            assert wait_replicas(client, 1, 100) == 0
        assert wait_replicas(client, 1, 5000) == 1
        client.delete(key)
    finally:
        client.close()


def test_three_hosts_lose_nothing_through_a_dead_host_and_a_redis_failover(tmp_path):
    outcome = hosts_run(tmp_path, wait_replicas=1)
    checked = outcome.verify
    assert checked["unexpected"] == checked["dead_lettered"] == 0, checked.get("dead_reasons")
    # A version may be stored twice (farm-loadgen's surplus, never a loss): the dead host's
    # batches, and those retried across the failover, are decided after newer batches of the
    # same fingerprints, and an older copy that differs from the newest stored version is a
    # new version to the farm, as in Keep (keephq/keep#5354). Each surplus row is a copy the
    # run sent (farm-loadgen counts only rows of batches it was answered with).
    assert checked["surplus"] == sum(len(copies) - 1 for copies in checked["surplus_event_ids"])
    assert checked["refused"] == checked["unknown_outcome"] == 0
    assert checked["counter_problems"] == []
    assert checked["sent"] > 0 and checked["stored"] > 0
    ids = [event_id for event_id, _ in outcome.stored]
    assert len(ids) == len(set(ids)) == checked["farm_counters"]["alerts_indexed"]
    # A push the gateway refused (503: no replica confirmed it in time) may still be on the
    # master and be stored; the client's resend is then a duplicate, and farm-loadgen, which
    # knows only the batches answered 202, finds that version under no batch of its own. Each
    # version it calls missing must be exactly such a row: stored, beyond the ones it matched.
    assert checked["missing"] == len(ids) - checked["stored"]
    stored_fingerprints = {fingerprint for _, fingerprint in outcome.stored}
    for copies in checked["missing_event_ids"]:
        assert all(c.split("(fingerprint ")[1].rstrip(")") in stored_fingerprints
                   for c in copies), copies
    # the failover struck mid-load: alerts kept coming in after it
    assert outcome.received_at_end > outcome.received_at_failover
