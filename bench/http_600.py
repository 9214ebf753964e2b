"""Benchmark: the whole farm fed through its front door. `farm start --workers 2` with 2 ingest
gateway processes (embedded Redis, SQLite), and `farm-loadgen --target http://... --verify`
at a fixed rate on the same machine; prints the rate reached, the loss, send->commit latency
and the CPU-seconds per MB of webhooks of each kind of process (gateways, workers, indexer,
Redis, supervisor, load generator), read from /proc over the run. On a shared machine the
rate reached depends on what else runs; CPU per MB does much less, and the capacity of a quiet
machine follows from it (the number of CPUs over the sum of the CPU-seconds per MB). With
--redis the load generator pushes its batches into Redis itself, as the Redis-fed runs do (the
gateways then idle), to split the same figures without the front door.

    .venv/bin/python bench/http_600.py [--rate 600GB/day] [--duration 60] [--producers 2]
                                       [--farm CHECKOUT] [--loadgen CHECKOUT] [--seed 31]
                                       [--redis] [--profile max]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from farm.ingest.auth import hash_key, new_key  # noqa: E402
from tests.support.ports import free_port  # noqa: E402


def farm_config(folder: Path, key: str) -> tuple[Path, str, str]:
    admin, gateway = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    path = folder / "farm.toml"
    path.write_text(f"""
[farm]
data_dir = "{folder / 'data'}"
[supervisor]
http = "{admin}"
[ingest]
processes = 2
http = "{gateway}"
rate = "100000/s"
[ingest.keys]
bench = ["{hash_key(key)}"]
""")
    return path, f"http://{admin}", f"http://{gateway}"


def status(admin: str) -> dict:
    with urllib.request.urlopen(f"{admin}/status", timeout=5) as answer:
        return json.load(answer)


def wait_ready(admin: str, farm: subprocess.Popen) -> dict:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if farm.poll() is not None:
            raise SystemExit(f"the farm exited with {farm.returncode}")
        try:
            doc = status(admin)
            parts = [doc["indexer"], *doc["workers"], *doc["ingest"]["processes"]]
            if all(part["alive"] and part.get("ready", True) for part in parts):
                return doc
        except (OSError, KeyError):
            pass
        time.sleep(0.3)
    raise SystemExit("the farm did not become ready in 180 s")


def roles(doc: dict, farm: subprocess.Popen) -> dict[str, list[psutil.Process]]:
    found = {"gateway": [p["pid"] for p in doc["ingest"]["processes"]],
             "worker": [w["pid"] for w in doc["workers"]],
             "indexer": [doc["indexer"]["pid"]], "redis": [doc["redis"]["pid"]],
             "supervisor": [farm.pid]}
    return {role: [psutil.Process(pid) for pid in pids if pid] for role, pids in found.items()}


def cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", default="600GB/day")
    parser.add_argument("--duration", type=int, default=60, help="seconds")
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=128,
                        help="requests in flight per producer")
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--redis", action="store_true",
                        help="push into Redis directly instead of through the gateways")
    parser.add_argument("--profile", default="steady", help="farm-loadgen --profile")
    parser.add_argument("--farm", type=Path, default=ROOT, help="checkout that runs the farm")
    parser.add_argument("--loadgen", type=Path, default=ROOT,
                        help="checkout whose load generator runs")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="farm-bench-http600-"))
    key = new_key()
    config, admin, url = farm_config(folder, key)
    python = args.farm / ".venv" / "bin" / "python"
    farm = subprocess.Popen([str(python if python.exists() else sys.executable), "-m",
                             "farm.cli", "start", "--workers", "2", "--config", str(config)],
                            cwd=args.farm, stdout=(folder / "farm.log").open("wb"),
                            stderr=subprocess.STDOUT)
    try:
        by_role = roles(wait_ready(admin, farm), farm)
        before = {role: cpu(procs) for role, procs in by_role.items()}
        front = [] if args.redis else ["--target", url, "--api-key", key,
                                       "--concurrency", str(args.concurrency)]
        loadgen = subprocess.Popen(
            [sys.executable, "-c", "from loadgen.cli import main; main()", "--config",
             str(config), *front, "--rate", args.rate, "--profile", args.profile,
             "--duration", f"{args.duration}s", "--producers", str(args.producers),
             "--seed", str(args.seed), "--verify", "--json", "--quiet", "--min-achieved", "0"],
            cwd=args.loadgen, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        tree = psutil.Process(loadgen.pid)
        seen: dict[int, float] = collections.defaultdict(float)
        while loadgen.poll() is None:
            for proc in [tree, *tree.children(recursive=True)]:
                try:
                    times = proc.cpu_times()
                    seen[proc.pid] = times.user + times.system
                except psutil.NoSuchProcess:
                    pass
            time.sleep(0.2)
        out, err = loadgen.communicate()
        used = {role: cpu(procs) - before[role] for role, procs in by_role.items()}
        used["loadgen (with its set-up and --verify)"] = sum(seen.values())
        counters = status(admin)["counters"]
    finally:
        farm.send_signal(signal.SIGTERM)
        farm.wait(180)
    if not out.strip():
        raise SystemExit(f"farm-loadgen printed no report: {err.decode()[-1500:]}")
    report(json.loads(out), used, counters)
    store_transactions(folder / "data" / "farm.db", counters)
    shutil.rmtree(folder, ignore_errors=True)


def store_transactions(path: Path, counters: dict) -> None:
    """How many history transactions the SQLite store committed (its `commits` log), and how
    many received alerts (stored versions and duplicates alike) each covered on average: the
    indexer's cost per alert follows its flush size."""
    if not path.exists():
        return
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        count = db.execute("SELECT count(*) FROM commits").fetchone()[0]
    finally:
        db.close()
    alerts = counters.get("alerts_received") or 0
    print(f"store transactions: {count:,}, {alerts / max(count, 1):.1f} received alerts each")


def report(doc: dict, used: dict[str, float], counters: dict) -> None:
    mb = doc["sent"]["payload_bytes"] / 1e6
    verify = doc.get("verify", {})
    print(f"asked {doc['asked_rate']['text']}: reached {doc['achieved']['mb_per_second']} MB/s "
          f"({doc['achieved']['of_asked'] * 100:.1f}% of asked), {doc['sent']['alerts']:,} "
          f"alerts in {doc['sent']['notifications']:,} webhooks, {mb:.1f} MB; http "
          f"{doc.get('http')}")
    print(f"verify: ok={verify.get('ok')} loss={verify.get('loss')} "
          f"latency={json.dumps(verify.get('latency_seconds'))}")
    batches = counters.get("batches_received") or 0
    print(f"queue batches: {batches:,}, {counters.get('alerts_received', 0) / max(batches, 1):.1f} "
          f"alerts each (the gateways' batching)")
    print(f"CPU-seconds per MB of webhooks ({os.cpu_count()} CPUs):")
    for role, seconds in used.items():
        print(f"  {role:>40}: {seconds / mb:.4f}  ({seconds:.1f} CPU-s)")
    farm_only = sum(s for role, s in used.items() if not role.startswith("loadgen"))
    print(f"  {'farm (all but the load generator)':>40}: {farm_only / mb:.4f}")


if __name__ == "__main__":
    main()
