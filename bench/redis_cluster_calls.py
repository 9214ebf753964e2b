"""Redis commands per batch that a farm's workers (and indexer) send, on one Redis against a Redis
Cluster of 3 masters and 3 replicas, for the same load. Prints a table (or JSON with --json).

    python bench/redis_cluster_calls.py               # 20k alerts, 2 runs of each, interleaved
    python bench/redis_cluster_calls.py --alerts 50000 --runs 3

Each run pushes the same farm-loadgen load (fixed seed) onto the queue with no farm running,
then starts `farm start --workers 2` with MONITOR open on every master, waits until the queue
is drained, and counts the commands sent from the workers' and the indexer's own connections
(found with psutil), and the requests those processes send (redis-py's sends, counted by a
sitecustomize the bench puts on their PYTHONPATH: a pipeline to one node is one request, one
round trip). Commands a Lua script runs show in MONITOR as `lua` and are not counted:
one EVALSHA is one command. Pipelined commands count one each (a pipeline to one node is one
round trip however many commands it holds, so this overstates round trips; the table also
lists EVALSHA and take commands per batch apart). The idle polling of the last fraction of a
second, and the start-up (lease, recovery of leftovers), count too, except in the first column,
"saturated req/batch": requests per batch acked while at least a quarter of the load was still
queued (the figure that matters for a busy farm; it needs enough --alerts for a few polls).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil  # noqa: E402
import redis  # noqa: E402

from farm.redisconn import connect  # noqa: E402
from tests.support.farms import FarmProcess, write_config  # noqa: E402
from tests.support.private_redis import private_redis  # noqa: E402
from tests.support.redis_cluster import RedisCluster  # noqa: E402

# Injected into the farm's processes (PYTHONPATH): counts every request redis-py sends (a
# pipeline to one node is one), per process, into a file named after its pid.
REQUEST_COUNTER = """
import os
_folder = os.environ.get("FARM_BENCH_REQUESTS")
if _folder:
    import threading as _threading

    import redis.connection as _connection
    _send = _connection.AbstractConnection.send_packed_command
    _sent = [0]

    def _counted(self, command, check_health=True):
        _sent[0] += 1
        path = os.path.join(_folder, str(os.getpid()))
        # replaced whole, since the bench reads it meanwhile; one temporary file per thread
        temporary = f"{path}.{_threading.get_ident()}.tmp"
        with open(temporary, "w") as out:
            out.write(str(_sent[0]))
        os.replace(temporary, path)
        return _send(self, command, check_health)

    _connection.AbstractConnection.send_packed_command = _counted
"""
MIX = "prometheus:3,grafana:1,datadog:1,zabbix:1,keep:1"
DEBUG = False
END_MARKER = b"bench-redis-cluster-calls-end"
LINE = re.compile(r'^[\d.]+ \[\d+ ([^\]]+)\] "(\w+)"')


class Monitor(threading.Thread):
    """MONITOR on one node: (client address, command) of every command, until stop()."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(b"MONITOR\r\n")
        self.seen: Counter = Counter()

    def run(self) -> None:
        """Read until the end marker stop() sends: MONITOR's output lags behind the commands."""
        buffer = b""
        while True:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\r\n")
            for line in lines:
                if END_MARKER in line:
                    return
                m = LINE.match(line.decode("utf-8", "replace")[1:])
                if m:
                    self.seen[(m.group(1), m.group(2).upper())] += 1

    def stop(self) -> Counter:
        marker = redis.Redis(port=self.port)
        marker.echo(END_MARKER.decode())
        marker.close()
        self.join(300)
        self.sock.close()
        return self.seen


def sent_requests(counts: Path, pids: set[int]) -> int:
    return sum(int((counts / str(pid)).read_text() or 0) for pid in pids
               if (counts / str(pid)).exists())


class SaturatedWindow:
    """Requests per batch while the queue still holds work for every worker: from the first
    status poll that shows a batch acked to the last one that shows at least SATURATED of the
    load still queued, so start-up, the drained tail and idle polling stay out of it."""

    SATURATED = 0.25

    def __init__(self, counts: Path):
        self.counts = counts
        self.queued_at_start = 0
        self.first: tuple[int, int] | None = None  # (batches acked, requests sent)
        self.last: tuple[int, int] | None = None

    def observe(self, doc: dict, pids: set[int]) -> None:
        queued = doc["queues"]["critical"] + doc["queues"]["normal"]
        self.queued_at_start = max(self.queued_at_start, queued)
        acked = doc["counters"]["batches_received"]
        if not acked or queued < self.SATURATED * self.queued_at_start:
            return
        point = (acked, sent_requests(self.counts, pids))
        if self.first is None:
            self.first = point
        self.last = point

    def per_batch(self) -> float:
        if self.first is None or self.last[0] == self.first[0]:
            return float("nan")  # too few polls: run with more --alerts
        return (self.last[1] - self.first[1]) / (self.last[0] - self.first[0])


def status(farm: FarmProcess) -> dict:
    """/status, polled again while the supervisor answers 500 (a poll that met it busy)."""
    while True:
        try:
            return farm.status()
        except urllib.error.HTTPError:
            time.sleep(0.2)
        except urllib.error.URLError as exc:
            raise RuntimeError(f"the farm stopped answering ({exc}):\n{farm.tail()}") from None


def farm_pids(doc: dict) -> set[int]:
    """The workers' and the indexer's pids, from a /status document."""
    return {w["pid"] for w in doc["workers"]} | {doc["indexer"]["pid"]}


def farm_addresses(pids: set[int]) -> set[str]:
    """`ip:port` of every TCP connection the processes pids hold."""
    found = set()
    for pid in pids:
        try:
            connections = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:  # gone since the poll (a supervisor replaced it)
            continue
        found.update(f"{c.laddr.ip}:{c.laddr.port}" for c in connections if c.raddr)
    return found


def one_run(folder: Path, url: str, ports: list[int], alerts: int) -> dict:
    config = write_config(folder / "farm.toml", folder / "data", url, prefix="bench")
    sent = subprocess.run([sys.executable, "-m", "loadgen.cli", "--config", str(config),
                           "--total", f"{alerts} alerts", "--profile", "max", "--mix", MIX,
                           "--seed", "5", "--quiet", "--min-achieved", "0"],
                          capture_output=True, text=True, timeout=600)
    assert sent.returncode == 0, sent.stderr
    monitors = [Monitor(port) for port in ports]
    for m in monitors:
        m.start()
    client = connect(url)
    counts = folder / "requests"
    counts.mkdir()
    (folder / "sitecustomize.py").write_text(REQUEST_COUNTER)
    env = {"PYTHONPATH": os.pathsep.join([str(folder), *sys.path]),
           "FARM_BENCH_REQUESTS": str(counts)}
    with FarmProcess(config, workers=2, env=env) as farm:
        addresses: set[str] = set()
        window = SaturatedWindow(counts)
        while True:
            doc = status(farm)
            pids = farm_pids(doc)
            addresses |= farm_addresses(pids)  # every poll: a connection may be replaced
            window.observe(doc, pids)
            if not (doc["queues"]["critical"] or doc["queues"]["normal"] or doc["inflight"]):
                break
            time.sleep(0.2)
        pids = farm_pids(status(farm))
        addresses |= farm_addresses(pids)
        seen = Counter()
        for m in monitors:
            seen.update(m.stop())
        batches = status(farm)["counters"]["batches_received"]
    client.close()
    if DEBUG:
        by_addr = Counter()
        for (addr, _), n in seen.items():
            by_addr[addr] += n
        print("farm addresses", sorted(addresses))
        for addr, _ in by_addr.most_common(8):
            print(addr, {cmd: n for (a, cmd), n in seen.items() if a == addr})
    ours: Counter = Counter()
    for (addr, cmd), n in seen.items():
        if addr in addresses:
            ours[cmd] += n
    total = sum(ours.values())
    requests = sent_requests(counts, pids)
    return {"batches": batches, "commands_per_batch": total / batches,
            "requests_per_batch": requests / batches,
            "saturated_requests_per_batch": window.per_batch(),
            "evalsha_per_batch": ours["EVALSHA"] / batches,
            "take_per_batch": (ours["LMOVE"] + ours["BLMOVE"]) / batches,
            "by_command": dict(ours.most_common())}


def single(folder: Path, alerts: int) -> dict:
    server = private_redis(folder / "redis")
    url = server.start()
    try:
        return one_run(folder, url, [server.port], alerts)
    finally:
        server.stop()


def cluster(folder: Path, alerts: int) -> dict:
    nodes = RedisCluster(folder / "cluster")
    url = nodes.start()
    try:
        return one_run(folder, url, [port for port, _ in nodes.nodes[:nodes.masters]], alerts)
    finally:
        nodes.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, list[dict]] = {"single": [], "cluster": []}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):  # interleaved: single, cluster, single, cluster...
            for mode, fn in (("single", single), ("cluster", cluster)):
                folder = Path(tmp) / f"{mode}-{run}"
                folder.mkdir()
                results[mode].append(fn(folder, args.alerts))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    names = ("batches", "saturated_requests_per_batch", "requests_per_batch",
             "commands_per_batch", "evalsha_per_batch", "take_per_batch")
    print(f"{'':10} {'batches':>8} {'saturated req/batch':>20} {'requests/batch':>15} "
          f"{'cmds/batch':>11} {'evalsha/batch':>14} {'take/batch':>11}")
    for mode, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in names}
        print(f"{mode:10} {med['batches']:>8.0f} {med['saturated_requests_per_batch']:>20.2f} "
              f"{med['requests_per_batch']:>15.2f} {med['commands_per_batch']:>11.2f} "
              f"{med['evalsha_per_batch']:>14.2f} {med['take_per_batch']:>11.2f}")
    for name in ("saturated_requests_per_batch", "requests_per_batch", "commands_per_batch"):
        ratio = (statistics.median(r[name] for r in results["cluster"])
                 / statistics.median(r[name] for r in results["single"]))
        print(f"cluster / single, {name.replace('_', ' ')}: {ratio:.2f}")
    for mode, runs in results.items():
        print(f"{mode}: {runs[-1]['by_command']}")


if __name__ == "__main__":
    try:
        main()
    except redis.RedisError as exc:
        sys.exit(f"bench: {exc}")
