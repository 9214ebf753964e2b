"""Many farm hosts on a real Redis Cluster (3 masters, 3 replicas). [redis] wait_replicas there:
the gateway's WAIT goes to the master that took the push, a worker's WAIT to every master it
wrote to. Then three farm nodes under `farm-loadgen --verify` (through one gateway), one whole
node SIGKILLed and a Redis master SIGKILLed (its replica takes over): the account is exact."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import contextmanager

import pytest

from farm.ingest.batching import Batcher, NotReplicated
from farm.redis_keys import Keys
from farm.redisconn import connect, connect_async, wait_replicas
from tests.support.farms import FarmProcess, write_config
from tests.support.redis_cluster import RedisCluster
from tests.support.waiting import wait_until

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
    keys = Keys("wgw", shards=6, cluster=True)

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
        batcher = Batcher(client, keys, 0, 10, 1 << 20, wait_replicas=1, wait_timeout_ms=100)
        try:
            accepted = await push(batcher, 6)
            with replicas_stopped(redis_cluster):
                refused = await push(batcher, 6)
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


def host_config(tmp_path, url: str, node: str, shared_db, gateway: bool):
    # The hosts share one SQLite file here; in production they share an engine cluster.
    config = write_config(tmp_path / f"{node}.toml", tmp_path / node, url, node_id=node,
                          ingest=gateway, extra=f'ring_mb = 1\n\n[store]\npath = "{shared_db}"\n')
    text = config.read_text().replace(
        'prefix = "farm"\n', 'prefix = "farm"\nwait_replicas = 1\nwait_timeout_ms = 2000\n')
    config.write_text(text)
    return config


def holding(client, node: str) -> bool:
    return any(client.llen(k) for k in client.scan_iter(match=f"*inflight:{node}.*",
                                                        target_nodes=client.ALL_NODES))


def test_three_hosts_lose_nothing_through_a_dead_host_and_a_redis_failover(tmp_path):
    cluster = RedisCluster(tmp_path / "redis")
    url = cluster.start()
    shared_db = tmp_path / "alerts.db"
    configs = {node: host_config(tmp_path, url, node, shared_db, gateway=node == "alpha")
               for node in ("alpha", "beta", "gamma")}
    client = connect(url)
    farms = [FarmProcess(configs[node], workers=1) for node in configs]
    try:
        for farm in farms:
            farm.start()
        alpha, beta, gamma = farms
        loadgen = subprocess.Popen(
            [sys.executable, "-m", "loadgen.cli", "--config", str(configs["alpha"]),
             "--target", f"http://{alpha.ingest_http}", "--rate", "1MB/s", "--duration",
             "25s", "--mix", "prometheus:60,keep:40", "--verify", "--json", "--quiet",
             "--seed", "12", "--min-achieved", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: holding(client, "beta"), "beta holding a batch", 180, 0.01)
        beta.kill()  # a whole host: supervisor and children
        wait_until(lambda: alpha.status()["counters"]["alerts_received"] > 0,
                   "alpha to ack", 180, 0.1)
        victim = cluster.master_indexes()[0]
        cluster.kill(victim)  # its replica takes over after cluster-node-timeout
        wait_until(lambda: len(cluster.master_indexes()) == cluster.masters,
                   "a replica to take over", 120, 0.2)
        cluster.restart(victim)  # back as a replica, so wait_replicas can be met again
        out, err = loadgen.communicate(timeout=900)
        assert loadgen.returncode == 0, err + out
        checked = json.loads(out)["verify"]
        assert checked["missing"] == checked["unexpected"] == checked["dead_lettered"] == 0
        assert checked["counter_problems"] == []
        assert checked["farm_received_expected"] == checked["sent"] > 0
        db = sqlite3.connect(shared_db)
        ids = [row[0] for row in db.execute("SELECT eventId FROM alerts")]
        db.close()
        assert len(ids) == len(set(ids)) == checked["stored"]
    finally:
        for farm in farms:
            farm.kill()
        client.close()
        cluster.stop()
