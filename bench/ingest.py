"""Benchmark: Alertmanager webhooks (about 4 KB, 3 alerts each) through the ingest gateway.

Starts a private Redis (the farm's default: unix socket, append-only file, fsync every second)
and N gateway processes on one port (SO_REUSEPORT), then drives them with wrk from this machine
for a bounded time, several runs, and prints requests/s, MB/s of webhook bodies and latency to
the 202 (p50, p99), with the median of the runs. No workers run: the queue is emptied between
runs, and high_water is raised so that backpressure does not end the run early.

    .venv/bin/python bench/ingest.py [--runs 3] [--duration 10] [--connections 64]
                                     [--processes 2] [--target http://host:port --key KEY]

wrk is Debian's package (`apt-get install wrk`).
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson
import psutil
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from farm.ingest.auth import hash_key, new_key  # noqa: E402
from farm.redis_server import RedisServer  # noqa: E402
from tests.support.ports import free_port  # noqa: E402


def alertmanager_webhook(n: int) -> dict:
    """One Alertmanager v4 webhook with 3 alerts, about 4 KB of JSON."""
    alerts = []
    for i in range(3):
        host = f"db-{(n + i) % 40:02d}"
        alerts.append({
            "status": "firing",
            "labels": {"alertname": "DiskAlmostFull", "instance": f"{host}:9100", "job": "node",
                       "severity": ["warning", "critical", "info"][i], "environment": "prod",
                       "service": "postgres", "Mountpoint": "/var/lib/pgsql",
                       "cluster": "eu-west-1", "namespace": "databases",
                       "pod": f"postgres-{i}-7d9f8b6c5-x2x9z", "team": "dba",
                       "region": "eu-west-1a", "node": "ip-10-1-2-3.eu-west-1.compute.internal",
                       "owner": "storage-platform"},
            "annotations": {
                "summary": f"Disk on {host} above 90%",
                "description": (f"Filesystem /var/lib/pgsql on {host} is 93% full; at the "
                                f"current growth rate it will be full within 4 hours. ") * 3
                + "Check the WAL archive and the replication slots; old base backups may "
                  "need pruning.",
                "runbook_url": "https://runbooks.example.org/disk",
                "dashboard": "https://grafana.example.org/d/disk01/disk-usage?var-host=" + host},
            "startsAt": "2026-03-04T08:15:30.123Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prom.example.internal:9090/graph?g0.expr=node_filesystem_"
                            "avail_bytes%7Bmountpoint%3D%22%2Fvar%2Flib%2Fpgsql%22%7D+%2F+node_"
                            "filesystem_size_bytes+%3C+0.1&g0.tab=1",
            "fingerprint": f"{n:08x}{i:08x}",
        })
    return {"version": "4", "groupKey": '{}:{alertname="DiskAlmostFull"}', "truncatedAlerts": 0,
            "status": "firing", "receiver": "farm",
            "groupLabels": {"alertname": "DiskAlmostFull"},
            "commonLabels": {"alertname": "DiskAlmostFull", "job": "node"},
            "commonAnnotations": {}, "externalURL": "http://am.example.internal:9093",
            "alerts": alerts}


WRK_SCRIPT = """
local f = assert(io.open("{body}", "rb")); wrk.body = f:read("*a"); f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic {basic}"
"""


def start_gateways(folder: Path, redis_url: str, processes: int, key: str,
                   python: str = sys.executable, tree: Path = ROOT, name: str = "",
                   start_seconds: float = 30) -> tuple[str, list]:
    """`processes` gateway processes of the checkout at `tree` (run by `python`) on a free
    port, with one API key; returns their URL and processes once /healthz answers."""
    port = free_port()
    config = folder / "farm.toml"
    config.write_text(f"""
[farm]
data_dir = "{folder / 'data'}"
[ingest]
http = "127.0.0.1:{port}"
rate = "1000000/s"
high_water = "20GB"
low_water = "10GB"
critical_water = "20GB"
[ingest.keys]
bench = ["{hash_key(key)}"]
""")
    metrics = folder / "metrics"
    metrics.mkdir(exist_ok=True)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    procs = [subprocess.Popen([python, "-m", "farm.ingest.process", "--config",
                               str(config), "--index", str(i), "--redis-url", redis_url],
                              cwd=tree, env=env, stdout=(folder / f"gw{i}.log").open("wb"),
                              stderr=subprocess.STDOUT) for i in range(processes)]
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + start_seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                break
        except OSError:
            time.sleep(0.1)
    else:
        raise SystemExit(f"{name or 'this tree'}: gateways did not start; see {folder}/gw0.log")
    time.sleep(0.5)  # let every process bind before the first connection
    return url, procs


def parse_wrk(text: str) -> dict:
    def seconds(value: str, unit: str) -> float:
        return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]

    found = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        found[f"p{pct}"] = seconds(m.group(1), m.group(2))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    found["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors:.*", text)
    found["socket_errors"] = m.group(0) if m else ""
    found["requests"] = int(re.search(r"(\d+) requests in", text).group(1))
    return found


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--processes", type=int, default=2, help="gateway processes")
    parser.add_argument("--target", help="bench a running gateway instead (needs --key)")
    parser.add_argument("--key", help="API key for --target")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    if args.target and not args.key:
        raise SystemExit("--target needs --key")
    return args


def write_wrk_script(folder: Path, key: str) -> tuple[bytes, Path]:
    """The request body and the wrk script that posts it with the key (HTTP Basic)."""
    body = orjson.dumps(alertmanager_webhook(1))
    (folder / "body.json").write_bytes(body)
    basic = base64.b64encode(f"api_key:{key}".encode()).decode()
    script = folder / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=folder / "body.json", basic=basic))
    return body, script


def one_run(args, url: str, script: Path, body: bytes, gateways: list) -> dict:
    cpu_before = sum(sum(g.cpu_times()[:2]) for g in gateways)
    out = subprocess.run(
        ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s",
         "--latency", "-s", str(script), f"{url}/alerts/event/prometheus"],
        capture_output=True, text=True, timeout=args.duration + 60, check=True).stdout
    result = parse_wrk(out)
    result["mbps"] = result["rps"] * len(body) / 1e6
    # Gateway CPU per request: comparable between runs even on a busy machine.
    cpu = sum(sum(g.cpu_times()[:2]) for g in gateways) - cpu_before
    result["cpu_us"] = cpu / max(result["requests"], 1) * 1e6
    return result


def print_run(run: int, result: dict, client) -> None:
    print(f"run {run}: {result['rps']:8.0f} req/s  {result['mbps']:6.1f} MB/s  "
          f"p50 {result['p50'] * 1e3:6.1f} ms  p99 {result['p99'] * 1e3:6.1f} ms  "
          f"gateway CPU {result['cpu_us']:.0f} us/request  non-202 {result['non2xx']}"
          f"  {result['socket_errors']}")
    if client is not None:
        batches = client.llen("farm:q:normal") + client.llen("farm:q:critical")
        print(f"        {batches} batches in Redis "
              f"({result['requests'] / max(batches, 1):.1f} requests per batch)")
        client.delete("farm:q:normal", "farm:q:critical")


def print_medians(results: list[dict]) -> None:
    med = {k: statistics.median(r[k] for r in results)
           for k in ("rps", "mbps", "p50", "p99", "cpu_us")}
    print(f"median of {len(results)}: {med['rps']:.0f} req/s, {med['mbps']:.1f} MB/s, "
          f"p50 {med['p50'] * 1e3:.1f} ms, p99 {med['p99'] * 1e3:.1f} ms, "
          f"gateway CPU {med['cpu_us']:.0f} us/request")


def stop_all(procs: list, server) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    if server is not None:
        server.stop()


def main() -> None:
    args = parse_args()
    folder = Path(tempfile.mkdtemp(prefix="farm-bench-ingest-"))
    key = args.key or new_key()
    body, script = write_wrk_script(folder, key)
    server, procs, client = None, [], None
    try:
        if args.target:
            url = args.target.rstrip("/")
        else:
            server = RedisServer(folder / "redis")
            redis_url = server.start()
            client = redis.Redis.from_url(redis_url)
            url, procs = start_gateways(folder, redis_url, args.processes, key)
        print(f"body {len(body)} bytes, 3 alerts; {args.processes} gateway processes; wrk "
              f"-t{args.threads} -c{args.connections} -d{args.duration}s; {os.cpu_count()} CPUs")
        gateways = [psutil.Process(p.pid) for p in procs]
        results = []
        for run in range(1, args.runs + 1):
            results.append(one_run(args, url, script, body, gateways))
            print_run(run, results[-1], client)
        print_medians(results)
    finally:
        stop_all(procs, server)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
