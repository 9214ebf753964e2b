"""The SQLite store alone: what one stored alert costs the indexer, in CPU and wall time.

Encodes alerts the way workers do (the tree's SqliteEncoder, batches of 200) before the clock
starts, then commits them through a SqliteWriter in flushes of --flush alerts, as the indexer
would, and closes it (the close waits for the background full-text index, so its work counts).
CPU is the process's, every thread included.

    python bench/store.py --alerts 100000 --runs 3
    python bench/store.py --tree /tmp/old354     # the same against another checkout's store

--repeat 0.7 makes that share of each batch full duplicates of alerts stored before (a counter
bump), like steady traffic; the default 0 stores every alert as new, the worst case.
"""

from __future__ import annotations

import argparse
import importlib
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path


def alert(rng: random.Random, n: int, seen: str) -> dict:
    """A normalized Prometheus alert of about 900 bytes of JSON, a new fingerprint per n."""
    host = f"node-{rng.randint(1, 400):03d}.dc{rng.randint(1, 4)}.example.internal"
    name = f"Alert{n % 300}"
    return {
        "id": f"{n:016x}", "name": name, "status": "firing", "severity": "warning",
        "lastReceived": seen, "firingStartTime": seen, "environment": "production",
        "service": f"svc-{rng.randint(1, 40)}", "source": ["prometheus"],
        "description": f"Metric above threshold on {host} for 5m; value {rng.random() * 100:.2f}",
        "message": f"{name} on {host}", "url": f"http://prometheus.example.internal:9090/g{n}",
        "labels": {"alertname": name, "instance": f"{host}:9100", "job": "node",
                   "team": f"team-{rng.randint(1, 12)}", "region": "eu-west-1"},
        "annotations": {"runbook_url": f"https://runbooks.example.org/alert{n % 300}"},
        "fingerprint": f"{n:064x}", "tenant": "default", "providerType": "prometheus",
        "apiKeyRef": "webhook", "pushed": True, "receivedAt": seen,
    }


def payloads(sqlite, count: int, repeat: float, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    encoder = sqlite.SqliteEncoder()
    out, fresh = [], 0
    sent = time.time()
    for batch in range(0, count, 200):
        items = []
        for i in range(batch, min(batch + 200, count)):
            seen = f"2026-11-30T10:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}.000Z"
            if fresh and rng.random() < repeat:
                a = alert(rng, rng.randrange(fresh), seen)
                decision = "f"
            else:
                a = alert(rng, fresh, seen)
                fresh += 1
                decision = "n"
            a["eventId"] = f"b{batch}:{i - batch}"
            items.append((a, decision))
        out.append(encoder.encode("default", sent + batch / 1e6, items))
    return out


def one_run(sqlite, bodies: list[bytes], flush: int) -> dict:
    per_flush = max(1, flush // 200)
    with tempfile.TemporaryDirectory(prefix="farm-store-bench-") as tmp:
        writer = sqlite.SqliteWriter(Path(tmp) / "farm.db")
        cpu, wall = time.process_time(), time.perf_counter()
        for at in range(0, len(bodies), per_flush):
            writer.write(bodies[at:at + per_flush])
        committed = time.perf_counter() - wall
        writer.close()
        size = sum(p.stat().st_size for p in Path(tmp).glob("farm*.db"))
        return {"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall,
                "committed": committed, "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--flush", type=int, default=5000, help="alerts per transaction")
    parser.add_argument("--repeat", type=float, default=0.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tree", help="another checkout whose store to measure")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(args.tree or Path(__file__).resolve().parents[1]).resolve()))
    sqlite = importlib.import_module("farm.sinks.sqlite")
    bodies = payloads(sqlite, args.alerts, args.repeat, seed=1)
    runs = [one_run(sqlite, bodies, args.flush) for _ in range(args.runs)]
    n = args.alerts
    for r in runs:
        print(f"  {1e6 * r['cpu'] / n:.1f} us CPU/alert, {1e6 * r['wall'] / n:.1f} us wall/alert "
              f"({1e6 * r['committed'] / n:.1f} until committed), "
              f"{r['bytes'] / n:.0f} B on disk/alert", file=sys.stderr)
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"{sqlite.__file__}: median of {args.runs}: {1e6 * med['cpu'] / n:.1f} us CPU per "
          f"alert, {1e6 * med['wall'] / n:.1f} us wall ({1e6 * med['committed'] / n:.1f} until "
          f"committed), {med['bytes'] / n:.0f} B on disk per alert")


if __name__ == "__main__":
    main()
