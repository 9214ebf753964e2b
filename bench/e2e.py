"""End-to-end throughput: pre-generated batches pushed into Redis as fast as possible for a fixed
time, through a real `farm start --workers N` into its store; prints alerts/s, MB/s of raw JSON
and p50/p99 sent_at -> commit latency, as the median of several runs.

    python bench/e2e.py --workers 2 --seconds 20 --runs 3

Every pushed alert is unique (a new fingerprint), the worst case for the store. The pusher keeps
the queue below --backlog batches so Redis memory stays bounded; if the queue is always at that
bound the farm, not the pusher, is the bottleneck (the script says which).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import msgpack
import orjson
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.farms import FarmProcess, write_config  # noqa: E402
from tests.support.private_redis import private_redis  # noqa: E402

MARKER = b"CYC0000000"  # fixed-width, replaced per cycle so every pushed alert is unique


def webhook(rng: random.Random, n: int) -> dict:
    """An Alertmanager webhook of one alert, about 1 KiB of JSON, like real ones."""
    host = f"node-{rng.randint(1, 400):03d}.dc{rng.randint(1, 4)}.example.internal"
    return {
        "version": "4", "status": "firing", "receiver": "farm", "groupKey": "{}:{}",
        "groupLabels": {"alertname": f"Alert{n % 300}"},
        "commonLabels": {"alertname": f"Alert{n % 300}"}, "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.internal:9093", "truncatedAlerts": 0,
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": f"Alert{n % 300}", "instance": f"{host}:9100",
                       "job": "node", "severity": rng.choice(["critical", "warning", "info"]),
                       "service": f"svc-{rng.randint(1, 40)}", "environment": "production",
                       "team": f"team-{rng.randint(1, 12)}", "region": "eu-west-1"},
            "annotations": {"summary": f"Alert{n % 300} on {host}",
                            "description": f"Metric above threshold on {host} for 5m; value "
                                           f"{rng.random() * 100:.2f}",
                            "runbook_url": f"https://runbooks.example.org/alert{n % 300}"},
            "startsAt": "2026-11-27T08:00:00.000Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": f"http://prometheus.example.internal:9090/graph?g0.expr=up{n}",
            "fingerprint": MARKER.decode() + f"{n:012x}",
        }],
    }


def make_pool(batches: int, per_batch: int, seed: int) -> tuple[list[bytes], int]:
    """Pre-packed `events` arrays and the raw JSON bytes of one pass over the pool."""
    rng = random.Random(seed)
    pool, json_bytes, n = [], 0, 0
    for _ in range(batches):
        events = []
        for _ in range(per_batch):
            events.append(webhook(rng, n))
            n += 1
        json_bytes += sum(len(orjson.dumps(e)) for e in events)
        pool.append(msgpack.packb(events))
    return pool, json_bytes


def envelope(events_packed: bytes, cycle: int) -> bytes:
    head = msgpack.packb({"v": 1, "id": uuid.uuid4().hex, "tenant": "default",
                          "provider": "prometheus", "sent_at": time.time()})
    # A msgpack map is a header then key/value pairs: add "events" by bumping the map size.
    body = events_packed.replace(MARKER, b"CYC%07d" % cycle)
    return bytes([head[0] + 1]) + head[1:] + msgpack.packb("events") + body


def push_for(client, queue: str, pool: list[bytes], seconds: float, backlog: int):
    pushed = cycles = full = polls = 0
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        if client.llen(queue) >= backlog:
            full += 1
            time.sleep(0.002)
            polls += 1
            continue
        polls += 1
        pipe = client.pipeline(transaction=False)
        for _ in range(20):
            pipe.lpush(queue, envelope(pool[i], cycles))
            i += 1
            pushed += 1
            if i == len(pool):
                i, cycles = 0, cycles + 1
        pipe.execute()
    return pushed, full / max(polls, 1)


def latencies(db_path: Path, sample: int = 20000) -> list[float]:
    db = sqlite3.connect(db_path)
    rows = db.execute(
        "SELECT a.doc ->> '$.receivedAt', (SELECT c.committedAt FROM commits c "
        "WHERE c.lastRowid >= a.rowid ORDER BY c.txn LIMIT 1) FROM alerts a "
        "WHERE a.rowid % ((SELECT count(*) FROM alerts) / ? + 1) = 0", (sample,)).fetchall()
    db.close()
    from datetime import datetime

    out = []
    for received, committed in rows:
        sent = datetime.fromisoformat(received.replace("Z", "+00:00")).timestamp()
        out.append(committed - sent)
    return sorted(out)


def one_run(args, pool, pool_json_bytes, per_batch) -> dict:
    with tempfile.TemporaryDirectory(prefix="farm-bench-") as tmp:
        tmp = Path(tmp)
        server = private_redis(tmp / "redis")
        url = server.start()
        try:
            config = write_config(tmp / "farm.toml", tmp / "data", url,
                                  extra=f"pin = true\n[store]\ncommit_rows = {args.commit_rows}\n"
                                  f"raw_sample = {args.raw_sample}\n")
            with FarmProcess(config, workers=args.workers) as farm:
                client = redis.Redis.from_url(url)
                started = time.monotonic()
                pushed, full_ratio = push_for(client, "farm:q:normal", pool, args.seconds,
                                              args.backlog)
                farm.wait_drained(expected_received=pushed * per_batch, timeout=600)
                elapsed = time.monotonic() - started
            lat = latencies(tmp / "data" / "farm.db")
        finally:
            server.stop()
    alerts = pushed * per_batch
    mb = pushed * (pool_json_bytes / len(pool)) / 1e6
    return {"alerts": alerts, "seconds": elapsed, "alerts_per_s": alerts / elapsed,
            "mb_per_s": mb / elapsed, "p50_ms": 1000 * lat[len(lat) // 2],
            "p99_ms": 1000 * lat[int(len(lat) * 0.99)], "queue_full_ratio": full_ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--per-batch", type=int, default=200)
    parser.add_argument("--pool", type=int, default=500, help="pre-generated batches")
    parser.add_argument("--backlog", type=int, default=200, help="queue bound, batches")
    parser.add_argument("--commit-rows", type=int, default=5000)
    parser.add_argument("--raw-sample", type=float, default=0.0,
                        help="[store] raw_sample: the share of raw events kept (0 to 1)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    pool, pool_json_bytes = make_pool(args.pool, args.per_batch, seed=1)
    print(f"pool: {args.pool} batches x {args.per_batch} alerts, "
          f"{pool_json_bytes / args.pool / args.per_batch:.0f} B of JSON per alert; "
          f"{os.cpu_count()} CPUs", file=sys.stderr)
    runs = []
    for n in range(args.runs):
        result = one_run(args, pool, pool_json_bytes, args.per_batch)
        runs.append(result)
        print(f"run {n + 1}: {result['alerts_per_s']:,.0f} alerts/s, "
              f"{result['mb_per_s']:.1f} MB/s, p50 {result['p50_ms']:.0f} ms, "
              f"p99 {result['p99_ms']:.0f} ms, queue at bound {result['queue_full_ratio']:.0%}",
              file=sys.stderr)
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    if args.json:
        print(json.dumps({"median": median, "runs": runs, "workers": args.workers}))
    else:
        print(f"median of {args.runs}: {median['alerts_per_s']:,.0f} alerts/s, "
              f"{median['mb_per_s']:.1f} MB/s raw JSON, p50 {median['p50_ms']:.0f} ms, "
              f"p99 {median['p99_ms']:.0f} ms ({args.workers} workers, SQLite)")


if __name__ == "__main__":
    main()
