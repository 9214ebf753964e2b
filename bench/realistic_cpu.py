"""Where the realistic mix's CPU goes end to end: each process of the farm, the indexer's
threads, and the load generator, in CPU milliseconds per MB of webhooks, over one run of
`farm-loadgen --profile max` into `farm start --workers 2` (embedded Redis, SQLite).

    python bench/realistic_cpu.py --runs 3
    python bench/realistic_cpu.py --tree /tmp/base --runs 3     # the farm of another checkout
    python bench/realistic_cpu.py --correlation bench/correlation-realistic.toml \
        --maintenance bench/maintenance-5.toml                  # with the stateful stages on

The load generator is this checkout's for every tree, so each farm sees the same load. The
indexer's threads are named by the order SQLite's writer starts them (history, current state,
full-text index, checkpointer); a tree whose indexer starts other threads prints them by id.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.request
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "bench"))

from farmrun import loadgen, running_farm  # noqa: E402

from farm.config import load  # noqa: E402

# farm/sinks/sqlite.py SqliteWriter starts these, in this order, after the indexer's own.
WRITER_THREADS = ("history", "current state", "full-text index", "checkpointer")


def farm_processes(config: Path) -> dict[str, psutil.Process]:
    """The farm's processes by role, from its /status."""
    http = load(config, env={}).supervisor.http
    with urllib.request.urlopen(f"http://{http}/status", timeout=5) as answer:
        doc = json.load(answer)
    found = {f"worker {i + 1}": w["pid"] for i, w in enumerate(doc["workers"])}
    found["indexer"] = doc["indexer"]["pid"]
    # an older farm's /status does not give Redis's pid: its embedded server is a child
    found["redis"] = doc["redis"].get("pid") or next(
        (p.pid for p in psutil.Process(doc["pid"]).children(recursive=True)
         if "redis-server" in p.name()), None)
    return {role: psutil.Process(pid) for role, pid in found.items() if pid}


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def thread_seconds(proc: psutil.Process) -> dict[int, float]:
    return {t.id: t.user_time + t.system_time for t in proc.threads()}


def thread_names(indexer: psutil.Process, ids: list[int]) -> dict[int, str]:
    others = sorted(i for i in ids if i != indexer.pid)
    names = {indexer.pid: "indexer main"}
    if len(others) == len(WRITER_THREADS):
        names.update(zip(others, (f"indexer {name}" for name in WRITER_THREADS), strict=True))
    else:
        names.update((i, f"indexer thread {i}") for i in others)
    return names


def one_run(root: Path, args: argparse.Namespace) -> dict[str, float]:
    """CPU seconds per MB of webhooks by process (and indexer thread), and the MB/s."""
    with running_farm(root, correlation=args.correlation, maintenance=args.maintenance) as config:
        procs = farm_processes(config)
        before = {role: cpu_seconds(p) for role, p in procs.items()}
        threads_before = thread_seconds(procs["indexer"])
        me = psutil.Process().cpu_times()
        report = loadgen(config, ["--rate", "60MB/s", "--profile", "max", "--duration",
                                  f"{args.seconds}s", "--seed", str(args.seed), "--verify",
                                  "--min-achieved", "0"])
        after = {role: cpu_seconds(p) for role, p in procs.items()}
        threads_after = thread_seconds(procs["indexer"])
        done = psutil.Process().cpu_times()
    if not report.get("verify", {}).get("ok"):
        raise SystemExit("farm-loadgen --verify did not balance")
    mb = report["sent"]["payload_bytes"] / 1e6
    seconds = report["duration_seconds"] + report["verify"]["drain_seconds"]
    out = {role: (after[role] - before[role]) / mb * 1000 for role in procs}
    names = thread_names(procs["indexer"], list(threads_after))
    for tid, used in threads_after.items():
        out[names[tid]] = (used - threads_before.get(tid, 0.0)) / mb * 1000
    out["farm-loadgen"] = ((done.children_user + done.children_system)
                           - (me.children_user + me.children_system)) / mb * 1000
    out["farm total"] = sum(after[r] - before[r] for r in procs) / mb * 1000
    out["MB/s end to end"] = mb / seconds
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", default=str(HERE), help="the checkout whose farm to run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--correlation", default=None, help="a correlation rule file to run with")
    parser.add_argument("--maintenance", default=None, help="a maintenance window file")
    args = parser.parse_args()
    runs = []
    for n in range(args.runs):
        started = time.monotonic()
        runs.append(one_run(Path(args.tree).resolve(), args))
        print(f"run {n + 1}: {runs[-1]['MB/s end to end']:.1f} MB/s, farm "
              f"{runs[-1]['farm total']:.1f} CPU-ms per MB ({time.monotonic() - started:.0f} s)",
              flush=True)
    print(f"{args.tree}: CPU milliseconds per MB of webhooks, median of {args.runs} runs")
    for key in runs[0]:
        values = [run.get(key, 0.0) for run in runs]
        print(f"  {key:<30} {statistics.median(values):8.1f}")


if __name__ == "__main__":
    main()
