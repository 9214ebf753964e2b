"""Benchmark: CPU-seconds per MB of webhooks, of the ingest gateway and of the HTTP load
generator, for one or more checkouts side by side, with farm-loadgen's realistic mix.

For each run and each checkout (interleaved: A B C A B C ...): a private Redis (unix socket,
append-only file, fsync every second, as `farm start` runs it), N gateway processes of that
checkout on one port, and one checkout's `farm-loadgen --target http://...` (--loadgen, this
one by default) at a fixed rate for a fixed time. No workers run; the queues are emptied
between runs. CPU is read from /proc
(psutil): the gateways' user+system time over the run, and the load generator's over its
sending (its pre-generation, before the first request, is left out). Both are divided by the
MB of webhook bodies the gateways accepted (202), so the figures stay comparable when other
work shares the machine; the medians of the runs are printed per checkout.

    .venv/bin/python bench/gateway_cpu.py --tree main=/tmp/main --tree new=. \\
        [--tree old=/tmp/old354:/tmp/old354/.venv/bin/python] [--runs 3] [--duration 20] \\
        [--rate 5MB/s] [--processes 2] [--producers 1] [--loadgen /tmp/main]

A tree is NAME=PATH[:PYTHON]; PYTHON defaults to PATH/.venv/bin/python, else this Python
(which then imports the tree's farm package, since the gateway runs with the tree as its
working directory).
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ingest as ingest_bench  # noqa: E402  (bench/ingest.py, beside this script)
from redis_info import command_calls  # noqa: E402

from farm.ingest.auth import new_key  # noqa: E402
from farm.redis_server import RedisServer  # noqa: E402

SAMPLE_SECONDS = 0.05
SCRIPT_COMMANDS = ("time", "get", "set")


@dataclass(frozen=True)
class Tree:
    name: str
    path: Path
    python: str


def parse_tree(text: str) -> Tree:
    name, sep, rest = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--tree {text!r} must be NAME=PATH[:PYTHON]")
    path, _, python = rest.partition(":")
    folder = Path(path).resolve()
    if not python:
        venv = folder / ".venv" / "bin" / "python"
        python = str(venv) if venv.exists() else sys.executable
    return Tree(name, folder, python)


def start_gateways(tree: Tree, folder: Path, redis_url: str, processes: int,
                   key: str) -> tuple[str, list[subprocess.Popen]]:
    return ingest_bench.start_gateways(folder, redis_url, processes, key, python=tree.python,
                                       tree=tree.path, name=tree.name, start_seconds=60)


def cpu_of(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


class TreeWatch:
    """Samples the load generator's process tree while it runs; `sending_cpu` is its CPU from
    the last sample before the gateways got busy to the end."""

    def __init__(self, loadgen: psutil.Process, gateways: list[psutil.Process]):
        self.loadgen = loadgen
        self.gateways = gateways
        self.known: dict[int, psutil.Process] = {loadgen.pid: loadgen}
        self.seen: dict[int, float] = {}
        self.before_sending: float | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def tree_cpu(self) -> float:
        try:
            for child in self.loadgen.children(recursive=True):
                self.known.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            pass
        for pid, proc in list(self.known.items()):
            try:
                t = proc.cpu_times()
                self.seen[pid] = t.user + t.system
            except psutil.NoSuchProcess:
                pass  # keep its last reading
        return sum(self.seen.values())

    def run(self) -> None:
        gateway_start = cpu_of(self.gateways)
        last = self.tree_cpu()
        while not self.done.wait(SAMPLE_SECONDS):
            now = self.tree_cpu()
            if self.before_sending is None and cpu_of(self.gateways) - gateway_start > 0.05:
                self.before_sending = last
            last = now

    def sending_cpu(self, total: float) -> float:
        self.done.set()
        self.thread.join()
        return total - (self.before_sending or 0.0)


def redis_calls(client: redis.Redis) -> collections.Counter:
    """Commands clients sent Redis, by command (EVALSHA, LPUSH, the backlog checks...); not
    those the rate limit's script runs inside Redis (TIME, GET, SET)."""
    return collections.Counter({name: calls for name, calls in command_calls(client).items()
                                if name not in SCRIPT_COMMANDS})


def loadgen_command(args, url: str, key: str) -> list[str]:
    # Run with the --loadgen checkout as working directory, so that its loadgen is imported.
    return [sys.executable, "-c", "from loadgen.cli import main; main()",
            "--target", url, "--api-key", key,
            "--rate", args.rate, "--duration", f"{args.duration}s", "--producers",
            str(args.producers), "--json", "--quiet"]


def one_run(tree: Tree, args, server_url: str, client: redis.Redis, folder: Path,
            key: str) -> dict:
    url, procs = start_gateways(tree, folder, server_url, args.processes, key)
    calls_before = redis_calls(client)
    gateways = [psutil.Process(p.pid) for p in procs]
    try:
        gw_before = cpu_of(gateways)
        started = time.monotonic()
        proc = subprocess.Popen(loadgen_command(args, url, key), cwd=args.loadgen,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        watch = TreeWatch(psutil.Process(proc.pid), gateways)
        out, err = proc.communicate(timeout=args.duration + 600)
        loadgen_total = watch.tree_cpu()
        loadgen_cpu = watch.sending_cpu(loadgen_total)
        gw_cpu = cpu_of(gateways) - gw_before
        if proc.returncode not in (0, 5):
            raise SystemExit(f"farm-loadgen failed ({proc.returncode}): {err.decode()[-2000:]}")
        doc = json.loads(out)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
    mb = doc["sent"]["payload_bytes"] / 1e6
    calls = redis_calls(client)
    calls.subtract(calls_before)
    requests = max(doc["sent"]["notifications"], 1)
    client.delete("farm:q:normal", "farm:q:critical")
    return {"tree": tree.name, "mb": mb, "mbps": doc["achieved"]["mb_per_second"],
            "of_asked": doc["achieved"]["of_asked"], "requests": doc["sent"]["notifications"],
            "gw_cpu_per_mb": gw_cpu / max(mb, 1e-9),
            "gw_us_per_request": gw_cpu / max(doc["sent"]["notifications"], 1) * 1e6,
            "loadgen_cpu_per_mb": loadgen_cpu / max(mb, 1e-9),
            "redis_calls_per_request": sum(calls.values()) / requests,
            "redis_by_command": {name: round(n / requests, 3)
                                 for name, n in calls.most_common(4) if n > 0},
            "refused": doc.get("http", {}).get("refused"), "wall": time.monotonic() - started}


def print_run(run: int, result: dict) -> None:
    print(f"run {run} {result['tree']:>8}: {result['mbps']:5.2f} MB/s "
          f"({result['of_asked'] * 100:5.1f}% of asked), {result['requests']} requests, "
          f"gateway {result['gw_cpu_per_mb']:.4f} CPU-s/MB ({result['gw_us_per_request']:.0f} "
          f"us/request), loadgen {result['loadgen_cpu_per_mb']:.4f} CPU-s/MB, "
          f"{result['redis_calls_per_request']:.2f} Redis calls/request "
          f"{result['redis_by_command']}, refused "
          f"{result['refused']}", flush=True)


def print_medians(trees: list[Tree], results: list[dict]) -> None:
    print("medians:")
    for tree in trees:
        mine = [r for r in results if r["tree"] == tree.name]
        med = {k: statistics.median(r[k] for r in mine)
               for k in ("mbps", "gw_cpu_per_mb", "gw_us_per_request", "loadgen_cpu_per_mb",
                         "redis_calls_per_request")}
        print(f"  {tree.name:>8}: gateway {med['gw_cpu_per_mb']:.4f} CPU-s/MB "
              f"({med['gw_us_per_request']:.0f} us/request), loadgen "
              f"{med['loadgen_cpu_per_mb']:.4f} CPU-s/MB, {med['redis_calls_per_request']:.2f} "
              f"Redis calls/request, {med['mbps']:.2f} MB/s "
              f"({len(mine)} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=parse_tree, action="append", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=20, help="seconds per run")
    parser.add_argument("--rate", default="5MB/s", help="farm-loadgen --rate")
    parser.add_argument("--processes", type=int, default=2, help="gateway processes")
    parser.add_argument("--producers", type=int, default=1, help="farm-loadgen --producers")
    parser.add_argument("--loadgen", type=Path, default=ROOT,
                        help="the checkout whose load generator runs (default: this one)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="farm-bench-gwcpu-"))
    server = RedisServer(folder / "redis")
    key = new_key()
    results = []
    try:
        redis_url = server.start()
        client = redis.Redis.from_url(redis_url)
        for run in range(1, args.runs + 1):
            for tree in args.tree:
                work = folder / f"{tree.name}-{run}"
                work.mkdir()
                results.append(one_run(tree, args, redis_url, client, work, key))
                print_run(run, results[-1])
        print_medians(args.tree, results)
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
