"""Several stage configurations in one process, taking turns over the same stream.

    python bench/pipeline_shared.py [--provider prometheus] [--rounds 3] [--configs off,windows]

Each configuration is one Pipeline (off: no rule files; windows: bench/maintenance-5.toml;
correlation: bench/correlation-realistic.toml; both) on one private Redis; every round runs
each of them once, as bench/pipeline.py's run_once does, after one warm-up round. Prints the
CPU µs per alert of each configuration (median and per round). What one configuration leaves
in the process (memos, the allocator's pages) shows up in the others' figures: compare with
each configuration alone (`--configs off`). Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "bench"))

import pipeline as bench  # noqa: E402
import redis as redis_lib  # noqa: E402

from farm.pipeline import Pipeline  # noqa: E402
from farm.redis_keys import Keys  # noqa: E402
from farm.redis_server import RedisServer  # noqa: E402

CORRELATION = str(HERE / "bench/correlation-realistic.toml")
MAINTENANCE = str(HERE / "bench/maintenance-5.toml")
CONFIGS = {"off": ("none", "none"), "windows": ("none", MAINTENANCE),
           "correlation": (CORRELATION, "none"), "both": (CORRELATION, MAINTENANCE)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--provider", default="prometheus", choices=bench.PROVIDERS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--configs", default="off,windows",
                        help=f"comma-separated, of {', '.join(CONFIGS)}")
    args = parser.parse_args()
    names = args.configs.split(",")
    unknown = [name for name in names if name not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration {', '.join(unknown)}: use {', '.join(CONFIGS)}")
    server = RedisServer(Path(tempfile.mkdtemp(prefix="farm-bench-")), appendonly=False)
    client = redis_lib.Redis.from_url(server.start())
    try:
        pipelines = {}
        for name in names:
            correlation, maintenance = CONFIGS[name]
            cfg = bench.bench_config(argparse.Namespace(
                rules=str(bench.EXAMPLE_RULES), correlation=correlation,
                maintenance=maintenance, raw_sample=0.0))
            pipelines[name] = Pipeline(cfg, client, Keys("bench"))
        raws, count = bench.batches(bench.Population(args.provider, 20_000), 200_000, 200, 5)
        cpu: dict[str, list[float]] = {name: [] for name in names}
        for round_ in range(args.rounds + 1):
            for name in names:
                start = time.process_time()
                bench.run_once(pipelines[name], client, raws)
                if round_:  # round 0 warms every pipeline up
                    cpu[name].append((time.process_time() - start) / count * 1e6)
        for name in names:
            print(f"{args.provider} {name:<11} {statistics.median(cpu[name]):5.1f} µs CPU per "
                  f"alert (rounds: {', '.join(f'{x:.1f}' for x in cpu[name])})")
    finally:
        client.close()
        server.stop()


if __name__ == "__main__":
    main()
