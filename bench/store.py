"""The SQLite store alone: what one stored alert costs the indexer, in CPU and wall time.

Encodes alerts the way workers do (the tree's SqliteEncoder, batches of 200) before the clock
starts, then commits them through a SqliteWriter in flushes of --flush alerts, as the indexer
would, and closes it (the close waits for the background full-text index, so its work counts).
CPU is the process's, every thread included.

    python bench/store.py --alerts 100000 --runs 3
    python bench/store.py --tree /tmp/old354     # the same against another checkout's store

--repeat 0.7 makes that share of each batch full duplicates of alerts stored before (a counter
bump), like steady traffic; the default 0 stores every alert as new, the worst case.

--realistic stores what the indexer sees from `bench/http_600.py` at 600 GB/day instead: a
population of --fingerprints alerts with text from farm-loadgen's vocabulary, batches of 9
(uuid4 batch ids, as the gateways make them), half of each batch full duplicates and a third
new versions of stored alerts (current-state updates with changed text for the full-text
index), in flushes of 5 batches paced at 90 flushes a second (about the cadence measured
there; --records and --pace change them), so the time-driven threads (full-text catch-up,
checkpointer) count as they do in the farm. It also prints each thread's CPU, user and system
apart, per flush:

    python bench/store.py --realistic --alerts 30000 --runs 3
    python bench/store.py --realistic --alerts 30000 --runs 3 --records 15 --pace 30
"""

from __future__ import annotations

import argparse
import importlib
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loadgen.vocab import PROBLEMS, SERVICES, WORDS  # noqa: E402


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


def realistic_alert(rng: random.Random, n: int, version: int, seen: str) -> dict:
    """Alert n of the population at a version: its identity fixed by n, its text by version."""
    its = random.Random(n)
    problem, _metric, summary = PROBLEMS[its.randrange(len(PROBLEMS))]
    service = SERVICES[its.randrange(len(SERVICES))]
    host = f"{service}-{its.randint(1, 60):02d}.dc{its.randint(1, 4)}.example.internal"
    alert = dict(alert_fields(its, n, seen), name=problem, service=service)
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 40)))
    alert["description"] = (f"{summary.format(host=host, service=service)}: "
                            f"value {rng.random() * 100:.2f} at version {version}; {words}")
    alert["message"] = f"{problem} on {host} ({service})"
    alert["labels"] = {"alertname": problem, "instance": f"{host}:9100", "service": service,
                       "team": f"team-{its.randint(1, 12)}", "region": "eu-west-1"}
    return alert


def alert_fields(rng: random.Random, n: int, seen: str) -> dict:
    return {"id": f"{n:016x}", "status": "firing", "severity": rng.choice(
                ("critical", "high", "warning", "info")),
            "lastReceived": seen, "firingStartTime": seen, "environment": "production",
            "source": ["prometheus"], "url": f"http://prometheus.example.internal:9090/g{n}",
            "annotations": {"runbook_url": f"https://runbooks.example.org/alert{n % 300}"},
            "fingerprint": f"{rng.getrandbits(256):064x}", "tenant": "default",
            "providerType": "prometheus", "apiKeyRef": "webhook", "pushed": True,
            "receivedAt": seen}


def realistic_payloads(sqlite, count: int, fingerprints: int, seed: int) -> list[bytes]:
    """Batches of 9: half full duplicates, a third new versions, the rest new alerts."""
    rng = random.Random(seed)
    encoder = sqlite.SqliteEncoder()
    out, stored, versions = [], 0, {}
    sent = time.time()
    for batch in range(0, count, 9):
        batch_id = f"{rng.getrandbits(128):032x}"
        items = []
        for i in range(batch, min(batch + 9, count)):
            seen = f"2026-11-30T10:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}.000Z"
            draw = rng.random()
            if stored and draw < 0.5:
                n, decision = rng.randrange(stored), "f"
            elif (stored and draw < 0.83) or stored >= fingerprints:
                n, decision = rng.randrange(stored), "p"
                versions[n] += 1
            else:
                n, decision = stored, "n"
                versions[n] = 0
                stored += 1
            a = realistic_alert(rng, n, versions[n], seen)
            a["eventId"] = f"{batch_id}:{i - batch}"
            items.append((a, decision))
        out.append(encoder.encode("default", sent + batch / 1e6, items))
    return out


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


def thread_cpu() -> dict[str, tuple[float, float]]:
    """User and system CPU-seconds of each live thread of this process, by thread name."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, tuple[float, float]] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        name = names.get(int(task.name), "other")
        user, system = out.get(name, (0.0, 0.0))
        out[name] = (user + int(fields[11]) / tick, system + int(fields[12]) / tick)
    return out


def one_run(sqlite, bodies: list[bytes], per_flush: int, pace: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="farm-store-bench-") as tmp:
        writer = sqlite.SqliteWriter(Path(tmp) / "farm.db")
        threads_before = thread_cpu()
        cpu, wall = time.process_time(), time.perf_counter()
        for at in range(0, len(bodies), per_flush):
            writer.write(bodies[at:at + per_flush])
            if pace:  # the next flush on the cadence, not before
                time.sleep(max(0.0, wall + (at // per_flush + 1) / pace - time.perf_counter()))
        committed = time.perf_counter() - wall
        threads = thread_cpu()  # before close: its threads end there
        writer.close()
        size = sum(p.stat().st_size for p in Path(tmp).glob("farm*.db"))
        split = {name: tuple(now - threads_before.get(name, (0.0, 0.0))[k] for k, now in
                             enumerate(spent)) for name, spent in threads.items()}
        return {"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall,
                "committed": committed, "bytes": size, "threads": split,
                "flushes": -(-len(bodies) // per_flush)}


def print_threads(runs: list[dict], alerts: int) -> None:
    """Median per thread over the runs: us of CPU per alert, user + system, and per flush."""
    flushes = runs[0]["flushes"]
    for name in sorted(runs[0]["threads"]):
        user = statistics.median(r["threads"].get(name, (0, 0))[0] for r in runs)
        system = statistics.median(r["threads"].get(name, (0, 0))[1] for r in runs)
        print(f"  {name:28s} {1e6 * (user + system) / alerts:6.1f} us/alert "
              f"(user {1e6 * user / alerts:5.1f}, system {1e6 * system / alerts:5.1f}), "
              f"{1e6 * (user + system) / flushes:7.0f} us/flush")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--flush", type=int, default=5000, help="alerts per transaction")
    parser.add_argument("--repeat", type=float, default=0.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tree", help="another checkout whose store to measure")
    parser.add_argument("--realistic", action="store_true",
                        help="600 GB/day's small flushes of realistic alerts (see above)")
    parser.add_argument("--fingerprints", type=int, default=10_000,
                        help="distinct alerts with --realistic")
    parser.add_argument("--records", type=int, default=5,
                        help="batches of 9 per flush with --realistic")
    parser.add_argument("--pace", type=float, default=90.0,
                        help="flushes a second with --realistic")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(args.tree or ROOT).resolve()))
    for name in [m for m in sys.modules if m == "farm" or m.startswith("farm.")]:
        del sys.modules[name]  # loadgen's import may have brought this tree's farm
    sqlite = importlib.import_module("farm.sinks.sqlite")
    if args.realistic:
        bodies = realistic_payloads(sqlite, args.alerts, args.fingerprints, seed=1)
        per_flush, pace = args.records, args.pace
    else:
        bodies = payloads(sqlite, args.alerts, args.repeat, seed=1)
        per_flush, pace = max(1, args.flush // 200), 0.0
    runs = [one_run(sqlite, bodies, per_flush, pace) for _ in range(args.runs)]
    n = args.alerts
    for r in runs:
        print(f"  {1e6 * r['cpu'] / n:.1f} us CPU/alert, {1e6 * r['wall'] / n:.1f} us wall/alert "
              f"({1e6 * r['committed'] / n:.1f} until committed), "
              f"{r['bytes'] / n:.0f} B on disk/alert", file=sys.stderr)
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "threads"}
    print(f"{sqlite.__file__}: median of {args.runs}: {1e6 * med['cpu'] / n:.1f} us CPU per "
          f"alert, {1e6 * med['wall'] / n:.1f} us wall ({1e6 * med['committed'] / n:.1f} until "
          f"committed), {med['bytes'] / n:.0f} B on disk per alert")
    print_threads(runs, n)


if __name__ == "__main__":
    main()
