"""What one alert costs Redis, end to end: farm-loadgen's realistic mix through a real farm
(`farm start --workers 2`, SQLite) on a private redis-server, with Redis's own counters read
before and after (INFO stats and cpu). Prints commands per alert and per batch, and Redis CPU
per alert, from which docs/scaling.md derives alerts per Redis core.

    python bench/redis_cost.py --rate 4MB/s --seconds 15 --runs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.farms import FarmProcess, write_config  # noqa: E402
from tests.support.loadgen_runs import run_cli  # noqa: E402
from tests.support.private_redis import private_redis  # noqa: E402


def redis_counters(client: redis.Redis) -> tuple[int, float]:
    info = client.info()
    return info["total_commands_processed"], info["used_cpu_user"] + info["used_cpu_sys"]


def one_run(folder: Path, rate: str, seconds: int) -> dict:
    server = private_redis(folder / "redis")
    url = server.start()
    client = redis.Redis.from_url(url)
    try:
        config = write_config(folder / "farm.toml", folder / "data", url)
        with FarmProcess(config, workers=2):
            commands0, cpu0 = redis_counters(client)
            done = run_cli("--config", str(config), "--rate", rate, "--duration", f"{seconds}s",
                           "--verify", "--json", "--quiet", "--seed", "5", "--min-achieved", "0",
                           timeout=seconds + 900)
            commands1, cpu1 = redis_counters(client)
        doc = json.loads(done.stdout)
    finally:
        client.close()
        server.stop()
    alerts, batches = doc["sent"]["alerts"], doc["sent"]["batches"]
    return {"alerts": alerts, "batches": batches, "ok": not doc["verify"]["missing"],
            "commands_per_alert": (commands1 - commands0) / alerts,
            "commands_per_batch": (commands1 - commands0) / batches,
            "redis_cpu_us_per_alert": (cpu1 - cpu0) / alerts * 1e6}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", default="4MB/s")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="farm-redis-cost-") as folder:
            result = one_run(Path(folder), args.rate, args.seconds)
        results.append(result)
        print(f"run {run + 1}: {result['alerts']:,} alerts in {result['batches']:,} batches "
              f"(verify {'ok' if result['ok'] else 'LOSS'}): "
              f"{result['commands_per_alert']:.3f} commands/alert, "
              f"{result['commands_per_batch']:.1f} commands/batch, "
              f"{result['redis_cpu_us_per_alert']:.1f} us Redis CPU/alert", flush=True)
    for name in ("commands_per_alert", "commands_per_batch", "redis_cpu_us_per_alert"):
        print(f"median {name}: {statistics.median(r[name] for r in results):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
