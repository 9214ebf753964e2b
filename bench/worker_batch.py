"""A worker's fixed cost per batch: the real worker loop (farm/worker.py: take, pipeline, ring,
ack) on small batches, against a private redis-server, with the indexer's side reduced to a
process that commits each ring record as soon as it is read.

    python bench/worker_batch.py --batch-events 8 --batches 3000 --runs 3
    python bench/worker_batch.py --batch-events 8 --rate 400     # batches/s pushed while it runs

Prints per provider the worker thread's CPU per batch and per alert (time.thread_time of the
thread that runs Worker.run, so the feeder thread does not count), Redis commands
per batch (INFO commandstats before and after, by command) and Redis CPU per batch. Without
--rate every batch is queued before the worker starts (a busy worker); with --rate a feeder
thread pushes them at that pace (a worker that often finds the queue empty, as behind HTTP
gateways that push small batches). Each run checks that the account counted every batch.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import multiprocessing
import os
import pstats
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis as redis_lib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from pipeline import Population, batches  # noqa: E402
from redis_info import command_calls, cpu_seconds  # noqa: E402

from farm import config, metrics, ring  # noqa: E402
from farm.queue import read_stats  # noqa: E402
from farm.redis_keys import keys_for  # noqa: E402
from farm.redis_server import RedisServer  # noqa: E402
from farm.wire import PROVIDERS  # noqa: E402
from farm.worker import Worker  # noqa: E402


def commit_records(handle: ring.RingHandle, expected: int, worker_pid: int) -> None:
    """The indexer's part, in a process of its own: read each record and mark it committed at
    once; once every batch's record is in, tell the worker to drain and stop (SIGUSR1)."""
    view = ring.Ring(handle)
    seen = 0
    while seen < expected:
        got = view.get()
        if got is None:
            ring.wait_doorbell(handle.doorbell, 0.05)
            continue
        view.publish_committed(got[0])
        seen += 1
    os.kill(worker_pid, signal.SIGUSR1)
    view.close()


def feed(client, queue: str, raws: list[bytes], rate: float) -> None:
    """LPUSH the batches at `rate` per second (all at once when rate is 0)."""
    if not rate:
        for start in range(0, len(raws), 500):
            client.lpush(queue, *raws[start:start + 500])
        return
    began = time.monotonic()
    for i, raw in enumerate(raws):
        delay = began + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        client.lpush(queue, raw)


def one_run(cfg, url: str, raws: list[bytes], rate: float, profile: bool = False) -> dict:
    client = redis_lib.Redis.from_url(url)
    client.flushdb()
    keys = keys_for(cfg, url)
    ctx = multiprocessing.get_context("spawn")
    handle = ring.create(ctx, 64 << 20, ctx.Semaphore(0))
    worker = Worker(cfg, 0, "bench-worker", ring.Ring(handle), url)
    signal.signal(signal.SIGUSR1, worker.stop)
    committer = ctx.Process(target=commit_records, args=(handle, len(raws), os.getpid()))
    feeder = threading.Thread(target=feed, args=(client, keys.queue("normal"), raws, rate))
    if not rate:
        feed(client, keys.queue("normal"), raws, 0)
    commands, cpu = command_calls(client), cpu_seconds(client)
    committer.start()
    if rate:
        feeder.start()
    profiler = cProfile.Profile(time.thread_time) if profile else None
    began_cpu, began = time.thread_time(), time.perf_counter()
    if profiler:
        profiler.runcall(worker.run)
    else:
        worker.run()
    worker_cpu, wall = time.thread_time() - began_cpu, time.perf_counter() - began
    redis_used = cpu_seconds(client) - cpu
    used = command_calls(client) - commands
    committer.join()
    if rate:
        feeder.join()
    counted = read_stats(client, keys)["batches_received"]
    if counted != len(raws):
        raise SystemExit(f"the account counted {counted} batches of {len(raws)}")
    ring.destroy(handle)
    client.close()
    if profiler:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
        print(text.getvalue())
    return {"cpu": worker_cpu, "wall": wall, "redis_cpu": redis_used, "commands": used}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--providers", default=",".join(PROVIDERS))
    parser.add_argument("--batch-events", type=int, default=8, help="events per batch")
    parser.add_argument("--batches", type=int, default=3000, help="batches per run")
    parser.add_argument("--population", type=int, default=20_000, help="distinct alerts")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="batches pushed per second while the worker runs (0: all before)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one extra run")
    return parser.parse_args()


def report(provider: str, raws: list[bytes], alerts: int, results: list[dict]) -> None:
    n = len(raws)
    per_batch = [r["cpu"] / n * 1e6 for r in results]
    per_alert = [r["cpu"] / alerts * 1e6 for r in results]
    redis_us = [r["redis_cpu"] / n * 1e6 for r in results]
    commands = results[-1]["commands"]
    shown = ", ".join(f"{name} {count / n:.2f}" for name, count in commands.most_common()
                      if name not in ("info",) and count / n >= 0.01)
    print(f"{provider:<11} worker {statistics.median(per_batch):7.0f} us/batch "
          f"{statistics.median(per_alert):6.1f} us/alert (runs: "
          f"{', '.join(f'{x:.0f}' for x in per_batch)})  redis {statistics.median(redis_us):5.0f}"
          f" us/batch")
    print(f"{'':<11} commands per batch: {shown}")


def main() -> None:
    args = parse_args()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="farm-bench-metrics-")
    metrics.use_identity("worker-0")
    # one worker's metrics for every run: prometheus_client registers a name once per process
    metrics.worker_metrics = functools.cache(metrics.worker_metrics)
    server = RedisServer(Path(tempfile.mkdtemp(prefix="farm-bench-")), appendonly=False)
    url = server.start()
    cfg = config.load(None, env={}, overrides={"redis": {"url": url}})
    try:
        print(f"python {sys.version.split()[0]}, {args.batches} batches of {args.batch_events} "
              f"events per run, rate: {args.rate or 'all queued first'}, median of {args.runs}")
        for provider in args.providers.split(","):
            pop = Population(provider, args.population)
            raws, alerts = batches(pop, args.batches * args.batch_events * 4, args.batch_events,
                                   5)
            raws = raws[:args.batches]
            alerts = count_alerts(pop, raws, args.batch_events)
            results = [one_run(cfg, url, raws, args.rate) for _ in range(args.runs)]
            report(provider, raws, alerts, results)
            if args.profile:
                one_run(cfg, url, raws, args.rate, profile=True)
    finally:
        server.stop()


def count_alerts(pop: Population, raws: list[bytes], per_batch: int) -> int:
    """Alerts in the first len(raws) batches, as batches() rendered them (event i is item
    i modulo the population)."""
    events = len(raws) * per_batch
    return sum(pop.alerts_in(i % len(pop.items)) for i in range(events))


if __name__ == "__main__":
    main()
