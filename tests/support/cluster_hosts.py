"""Three farm nodes on a private Redis Cluster under `farm-loadgen --verify` (through the first
node's gateway); one whole node SIGKILLed, then a Redis master SIGKILLed and its replica taking
over: what tests/test_cluster_hosts.py asserts and bench/cluster.py --failover measures."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from farm.redisconn import connect
from tests.support.farms import FarmProcess, write_config
from tests.support.redis_cluster import RedisCluster
from tests.support.waiting import wait_until

NODES = ("alpha", "beta", "gamma")


@dataclass
class HostsOutcome:
    verify: dict              # farm-loadgen's verify section
    returncode: int           # farm-loadgen's exit code (0: the account balanced)
    stored: list[tuple[str, str]]  # (eventId, fingerprint) of every row in the store
    received_at_failover: int  # alerts_received when the master was killed
    received_at_end: int


def host_config(folder: Path, url: str, node: str, shared_db: Path, wait_replicas: int) -> Path:
    # The hosts share one SQLite file here; in production they share an engine cluster.
    config = write_config(folder / f"{node}.toml", folder / node, url, node_id=node,
                          ingest=node == NODES[0],
                          extra=f'ring_mb = 1\n\n[store]\npath = "{shared_db}"\n')
    text = config.read_text().replace(
        'prefix = "farm"\n',
        f'prefix = "farm"\nwait_replicas = {wait_replicas}\nwait_timeout_ms = 2000\n')
    config.write_text(text)
    return config


def holding(client, node: str) -> bool:
    return any(client.llen(k) for k in client.scan_iter(match=f"*inflight:{node}.*",
                                                        target_nodes=client.ALL_NODES))


def hosts_run(folder: Path, wait_replicas: int, rate: str = "1MB/s",
              duration: str = "25s") -> HostsOutcome:
    cluster = RedisCluster(folder / "redis")
    url = cluster.start()
    shared_db = folder / "alerts.db"
    configs = [host_config(folder, url, node, shared_db, wait_replicas) for node in NODES]
    client = connect(url)
    farms = [FarmProcess(config, workers=1) for config in configs]
    try:
        for farm in farms:
            farm.start()
        alpha, beta, _ = farms
        loadgen = subprocess.Popen(
            [sys.executable, "-m", "loadgen.cli", "--config", str(configs[0]),
             "--target", f"http://{alpha.ingest_http}", "--rate", rate, "--duration", duration,
             "--mix", "prometheus:60,keep:40", "--verify", "--json", "--quiet", "--seed", "12",
             "--min-achieved", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: holding(client, "beta"), "beta holding a batch", 180, 0.01)
        beta.kill()  # a whole host: supervisor and children
        wait_until(lambda: alpha.status()["counters"]["alerts_received"] > 0,
                   "a live host to ack", 180, 0.1)
        at_failover = alpha.status()["counters"]["alerts_received"]
        victim = cluster.master_indexes()[0]
        cluster.kill(victim)  # its replica takes over after cluster-node-timeout
        wait_until(lambda: len(cluster.master_indexes()) == cluster.masters,
                   "a replica to take over", 120, 0.2)
        cluster.restart(victim)  # back as a replica, so wait_replicas can be met again
        out, err = loadgen.communicate(timeout=900)
        if not out.strip():
            raise AssertionError(f"farm-loadgen printed no report: {err}")
        at_end = alpha.status()["counters"]["alerts_received"]
    finally:
        for farm in farms:
            farm.kill()
        client.close()
        cluster.stop()
    db = sqlite3.connect(shared_db)
    rows = list(db.execute("SELECT eventId, fingerprint FROM alerts"))
    db.close()
    return HostsOutcome(json.loads(out)["verify"], loadgen.returncode, rows, at_failover, at_end)
