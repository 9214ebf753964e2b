"""farm-loadgen's own figures: how fast one producer generates on one core, and how closely the
pacer holds an asked rate. Prints a table (or JSON with --json).

    python bench/loadgen.py                      # generator speed + 60 s of pacing at 600GB/day
    python bench/loadgen.py --pacing-seconds 20 --rate 20MB/s

Generation is measured three ways, each on one core: the stream alone (choosing and stamping
notifications), the stream plus batching into wire-v1 envelopes, and a whole producer pushing
into a real Redis with --profile max. Pacing runs one producer into a real Redis (no farm, so
nothing else competes) and compares every 10 s window and the whole run with the asked rate.
Volume is raw provider JSON, as everywhere in farm-loadgen.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from farm.units import parse_rate  # noqa: E402
from loadgen import runner  # noqa: E402
from loadgen.batches import Batcher  # noqa: E402
from loadgen.options import DEFAULT_MIX, PlanOptions, make_plan  # noqa: E402
from loadgen.producer import prepare  # noqa: E402
from tests.support.private_redis import private_redis  # noqa: E402


def plan_for(redis_url: str, **over):
    options = dict(rate="600GB/day", duration="60s", total=None, mix=DEFAULT_MIX,
                   profile="steady", seed=1, epoch="2026-01-01T00:00:00Z", fingerprints=10_000,
                   repeat="0.3", flap="0.1", labels="1-6", label_values=1000,
                   size_median="1KiB", size_max="64KiB", producers=1, batch_events=200,
                   batch_bytes="256KiB", batch_wait="100ms", tenant="default",
                   redis_url=redis_url, prefix="bench", http_url=None, api_key=None,
                   concurrency=32, max_backlog="8GB", verify=False)
    options.update(over)
    return make_plan(PlanOptions(**options))


def generation(seconds: float) -> dict:
    """MB/s of the stream alone, and of the stream plus batching (one core, no I/O)."""
    spec = plan_for("redis://unused").producers[0]
    stream = prepare(spec)
    started, sent = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        for _ in range(1000):
            sent += stream.next().size
    stream_rate = sent / (time.perf_counter() - started)

    stream = prepare(spec)
    batcher = Batcher("0" * 16, 0, "default", 200, 256 * 1024, 0.1, None)
    started, sent = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        for _ in range(1000):
            group = stream.next()
            batcher.add(group)
            sent += group.size
        for batch in batcher.take():
            batcher.seal(batch, time.time())
    batched_rate = sent / (time.perf_counter() - started)
    return {"stream_mb_s": stream_rate / 1e6, "batched_mb_s": batched_rate / 1e6}


def into_redis(redis_url: str, seconds: float, client) -> dict:
    """One producer, --profile max, into a real Redis."""
    outcome = runner.run(plan_for(redis_url, rate=None, profile="max",
                                  duration=f"{seconds}s"))
    client.flushdb()
    return {"max_mb_s": outcome.payload_bytes / outcome.seconds / 1e6,
            "max_alerts_s": outcome.alerts / outcome.seconds}


class Sampler(runner.Progress):
    """Records (elapsed, payload bytes) as the runner reports them, 4 times a second."""

    def __init__(self):
        self.samples: list[tuple[float, float]] = []

    def update(self, elapsed: float, payload: float, alerts: float) -> None:
        self.samples.append((elapsed, payload))


def pacing(redis_url: str, rate: str, seconds: float, client) -> dict:
    """Achieved/asked over the whole run and over every 10 s window."""
    asked = parse_rate(rate).bytes_per_second
    sampler = Sampler()
    outcome = runner.run(plan_for(redis_url, rate=rate, duration=f"{seconds}s"), sampler)
    client.flushdb()
    windows = []
    samples = sampler.samples
    for start in range(0, int(seconds) - 9, 10):
        inside = [(t, b) for t, b in samples if start <= t <= start + 10]
        if len(inside) >= 2:
            (t0, b0), (t1, b1) = inside[0], inside[-1]
            windows.append((b1 - b0) / (t1 - t0) / asked)
    return {"asked_mb_s": asked / 1e6,
            "achieved_mb_s": outcome.payload_bytes / outcome.seconds / 1e6,
            "whole_run_error_pct": (outcome.payload_bytes / outcome.seconds / asked - 1) * 100,
            "worst_10s_window_error_pct": max((abs(w - 1) * 100 for w in windows), default=None),
            "seconds": outcome.seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generation-seconds", type=float, default=5)
    parser.add_argument("--pacing-seconds", type=float, default=60)
    parser.add_argument("--rate", default="600GB/day")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = {"cpus": os.cpu_count(), "mix": DEFAULT_MIX}
    figures.update(generation(args.generation_seconds))
    with tempfile.TemporaryDirectory() as folder:
        server = private_redis(Path(folder))
        url = server.start()
        try:
            import redis

            client = redis.Redis.from_url(url)
            figures.update(into_redis(url, args.generation_seconds, client))
            figures["pacing"] = pacing(url, args.rate, args.pacing_seconds, client)
        finally:
            server.stop()
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    pace = figures["pacing"]
    print(f"generation, one producer on one core ({figures['cpus']} CPUs here), mix "
          f"{figures['mix']}")
    print(f"  stream alone               {figures['stream_mb_s']:8.1f} MB/s")
    print(f"  stream + wire-v1 batches   {figures['batched_mb_s']:8.1f} MB/s")
    print(f"  producer into Redis (max)  {figures['max_mb_s']:8.1f} MB/s  "
          f"({figures['max_alerts_s']:,.0f} alerts/s)")
    print(f"pacing at {args.rate} ({pace['asked_mb_s']:.2f} MB/s) for {pace['seconds']:.0f} s "
          f"into Redis")
    print(f"  achieved                   {pace['achieved_mb_s']:8.3f} MB/s "
          f"({pace['whole_run_error_pct']:+.2f}% over the run)")
    if pace["worst_10s_window_error_pct"] is not None:
        print(f"  worst 10 s window          {pace['worst_10s_window_error_pct']:8.2f}% off")


if __name__ == "__main__":
    main()
