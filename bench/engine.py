"""farm's indexing rate into a local Elasticsearch/OpenSearch node against a raw `_bulk` baseline
on the same node in the same run.

    python bench/engine.py --alerts 200000 --runs 3 [--url http://127.0.0.1:9200]

Baseline: the exact NDJSON farm's workers produce for those alerts (history `index` actions
plus current-state `update` actions), pre-built, then POSTed as fast as possible with
`--in-flight` concurrent requests of `--bulk` bytes. Farm: a real `farm start --workers N`
with `[store] kind = "elasticsearch"`, fed the raw Alertmanager webhooks through Redis, timed
from the first push until everything is acked. Both write the same documents; the ratio
farm / baseline is what farm's pipeline costs on top of the engine's own work (on this 2-core
machine the workers and the engine share the CPUs). Each bulk size in --farm-bulk is tried.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import msgpack
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e import envelope, make_pool  # noqa: E402

from farm.config import load  # noqa: E402
from farm.providers import normalizer_for  # noqa: E402
from farm.sinks.elastic import NDJSON, ElasticEncoder  # noqa: E402
from farm.sinks.engine_client import Engine  # noqa: E402
from tests.support.engine import EngineNode  # noqa: E402
from tests.support.farms import FarmProcess, engine_store_table, write_config  # noqa: E402
from tests.support.private_redis import private_redis  # noqa: E402


def store_cfg(url: str, prefix: str, bulk: str = "8MB", in_flight: int = 3):
    return load(None, env={"FARM_STORE_KIND": "elasticsearch", "FARM_STORE_URL": url,
                           "FARM_STORE_INDEX_PREFIX": prefix, "FARM_STORE_REPLICAS": "0",
                           "FARM_STORE_BULK_BYTES": bulk,
                           "FARM_STORE_IN_FLIGHT": str(in_flight)})


def prebuilt_bodies(pool: list[bytes], cfg, bulk_bytes: int) -> tuple[list[bytes], int]:
    """The NDJSON farm would send for the pool, cut into requests of about bulk_bytes."""
    encoder = ElasticEncoder(cfg)
    normalize = normalizer_for("prometheus")
    now = "2026-11-27T08:00:00.000Z"
    sent_at = time.time()
    bodies, current, alerts = [], [], 0
    size = 0
    for packed in pool:
        batch_id = uuid.uuid4().hex
        items = []
        for event in msgpack.unpackb(packed):
            for alert in normalize(event, now):
                alert.update(eventId=f"{batch_id}:{len(items)}", tenant="default",
                             batchId=batch_id, receivedAt=now, processedAt=now,
                             providerType="prometheus")
                items.append((alert, "n"))
        ndjson = msgpack.unpackb(encoder.encode("default", sent_at, items))[0]
        alerts += len(items)
        current.append(ndjson)
        size += len(ndjson)
        if size >= bulk_bytes:
            bodies.append(b"".join(current))
            current, size = [], 0
    if current:
        bodies.append(b"".join(current))
    return bodies, alerts


def post_all(url: str, bodies: list[bytes], in_flight: int) -> float:
    """POST every body with in_flight threads; returns the elapsed seconds."""
    engine = Engine(store_cfg(url, "unused").store)
    queue = list(reversed(bodies))
    lock = threading.Lock()
    errors = []

    def post():
        while True:
            with lock:
                if not queue:
                    return
                body = queue.pop()
            status, answer = engine.request("POST", "/_bulk?filter_path=errors", body=body,
                                            headers=NDJSON, ok=None)
            if status != 200 or answer.get("errors"):
                errors.append((status, str(answer)[:200]))

    started = time.perf_counter()
    threads = [threading.Thread(target=post) for _ in range(in_flight)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    engine.close()
    if errors:
        raise RuntimeError(f"baseline bulk errors: {errors[:3]}")
    return elapsed


def drop(url: str, prefix: str) -> None:
    engine = Engine(store_cfg(url, prefix).store)
    engine.request("DELETE", f"/{prefix}-alerts-*", ok=(200, 404))
    engine.close()


def baseline(url: str, pool, bulk: str, in_flight: int) -> float:
    prefix = f"base{uuid.uuid4().hex[:8]}"
    cfg = store_cfg(url, prefix, bulk)
    from farm.sinks.engine_client import setup

    engine = Engine(cfg.store)
    setup(engine, cfg.store)
    engine.close()
    from farm.units import parse_bytes

    bodies, alerts = prebuilt_bodies(pool, cfg, parse_bytes(bulk))
    elapsed = post_all(url, bodies, in_flight)
    drop(url, prefix)
    return alerts / elapsed


def farm_rate(url: str, pool, per_batch: int, workers: int, bulk: str, in_flight: int) -> float:
    prefix = f"farm{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="farm-bench-") as tmp:
        tmp = Path(tmp)
        server = private_redis(tmp / "redis")
        redis_url = server.start()
        try:
            config = write_config(tmp / "farm.toml", tmp / "data", redis_url,
                                  extra=engine_store_table(url, prefix, bulk_bytes=bulk,
                                                     in_flight=in_flight, commit_ms=500,
                                                     commit_rows=100_000))
            with FarmProcess(config, workers=workers) as farm:
                client = redis.Redis.from_url(redis_url)
                started = time.monotonic()
                pipe = client.pipeline(transaction=False)
                for packed in pool:  # the whole backlog at once: the farm is the bottleneck
                    pipe.lpush("farm:q:normal", envelope(packed, 0))
                pipe.execute()
                farm.wait_drained(expected_received=len(pool) * per_batch, timeout=1200)
                elapsed = time.monotonic() - started
        finally:
            server.stop()
    drop(url, prefix)
    return len(pool) * per_batch / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an engine to use (default: start one in a JVM)")
    parser.add_argument("--alerts", type=int, default=200_000)
    parser.add_argument("--per-batch", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bulk", default="8MB", help="baseline request size")
    parser.add_argument("--in-flight", type=int, default=3)
    parser.add_argument("--farm-bulk", default="2MB,8MB,16MB",
                        help="farm [store] bulk_bytes values to try")
    args = parser.parse_args()
    node = None
    url = args.url
    if url is None:
        node = EngineNode(Path(tempfile.mkdtemp(prefix="farm-engine-")))
        url = node.start(timeout=300)
    try:
        pool, json_bytes = make_pool(args.alerts // args.per_batch, args.per_batch, seed=2)
        mb_per_alert = json_bytes / args.alerts / 1e6
        # A cold JVM runs several times slower for its first minute: warm it up, unmeasured.
        print(f"warm-up: {baseline(url, pool, args.bulk, args.in_flight):,.0f} alerts/s "
              f"(discarded)", flush=True)
        for n in range(args.runs):
            base = baseline(url, pool, args.bulk, args.in_flight)
            line = [f"run {n + 1}: baseline {base:,.0f} alerts/s ({base * mb_per_alert:.1f} MB/s)"]
            for bulk in args.farm_bulk.split(","):
                rate = farm_rate(url, pool, args.per_batch, args.workers, bulk, args.in_flight)
                line.append(f"farm@{bulk} {rate:,.0f} ({rate / base:.0%})")
                RESULTS.setdefault(bulk, []).append(rate / base)
            BASE.append(base)
            print("; ".join(line), flush=True)
        print(f"median baseline {statistics.median(BASE):,.0f} alerts/s; "
              + ", ".join(f"farm@{b} {statistics.median(r):.0%} of baseline"
                          for b, r in RESULTS.items()))
    finally:
        if node is not None:
            node.stop()


RESULTS: dict[str, list[float]] = {}
BASE: list[float] = []

if __name__ == "__main__":
    main()
