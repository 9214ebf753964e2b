"""What finding the inflight lists costs Redis when the keyspace is large: a keyspace SCAN for
`<p>:inflight:*` (how supervisors, `/status` and `/metrics` found them before the shards'
worker sets) against reading the sets (farm/queue.py inflight_lists), on a private
redis-server that holds N dedup-sized keys besides a few inflight lists. Prints, per lookup,
the wall time and Redis's own CPU time.

    python bench/registry_cost.py --keys 1000000 --repeat 5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redis_info import cpu_seconds  # noqa: E402  (bench/redis_info.py, beside this script)

from farm import queue  # noqa: E402
from farm.redis_keys import Keys  # noqa: E402
from tests.support.private_redis import private_redis  # noqa: E402

WORKERS = 4


def fill(client: redis.Redis, keys: Keys, n: int) -> None:
    """n dedup-sized keys, and WORKERS workers each holding one batch (named in the set)."""
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        pipe.set(keys.dedup("default", f"{i:032x}"), b"x" * 60)
        if i % 10_000 == 9_999:
            pipe.execute()
    for w in range(WORKERS):
        pipe.sadd(keys.workers(0), f"n.{w}")
        pipe.lpush(keys.inflight(f"n.{w}"), b"batch")
    pipe.execute()


def measure(client: redis.Redis, name: str, lookup, repeat: int, n: int) -> None:
    cpu, started = cpu_seconds(client), time.perf_counter()
    for _ in range(repeat):
        found = lookup()
    wall = (time.perf_counter() - started) / repeat * 1000
    used = (cpu_seconds(client) - cpu) / repeat * 1000
    print(f"{name:>24}: {len(found)} lists, {wall:9.2f} ms wall, {used:8.2f} ms of Redis CPU "
          f"per lookup ({n:,} other keys)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000, help="dedup keys in Redis")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    server = private_redis(Path(tempfile.mkdtemp(prefix="farm-bench-registry-")))
    try:
        client = redis.Redis.from_url(server.start())
        keys = Keys("farm")
        fill(client, keys, args.keys)
        measure(client, "keyspace SCAN (before)", lambda: list(client.scan_iter(
            match=keys.inflight_pattern(), count=500)), args.repeat, args.keys)
        measure(client, "worker sets (now)", lambda: queue.inflight_lists(client, keys),
                args.repeat, args.keys)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
