"""The correlation script's own cost in Redis, replayed: one tree's script against another's on
the same recorded calls.

    python bench/correlation_replay.py                          # this tree, Prometheus and Keep
    python bench/correlation_replay.py --baseline /tmp/base     # against a worktree, taking turns
    python bench/correlation_replay.py --providers keep --rounds 7 \\
        --correlation bench/correlation-20.toml

A worker's pipeline runs one pass of bench/pipeline.py's stream for each provider, with the
correlation rules given (default bench/correlation-realistic.toml), and every chunk request it
sends to the correlation script is recorded. Each round then replays the recorded requests, in
order, against a fresh database of one private Redis, once per tree: the tree's own
farm/correlation/state.lua and chunk.lua, loaded by SCRIPT LOAD. Redis's own time for them
(`INFO commandstats`, evalsha usec) is what is compared; the worker, the network and the
Python client are not in it. Trees are compared on the requests this tree builds, so both must
read the same request format (the script's contract).

Prints, per provider and tree, the script's milliseconds per round and their median, µs per
call, and the ratio of each tree to the baseline in the same round. Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "bench"))

import pipeline as bench  # noqa: E402
import redis as redis_lib  # noqa: E402

from farm.pipeline import Pipeline  # noqa: E402
from farm.redis_keys import Keys  # noqa: E402
from farm.redis_server import RedisServer  # noqa: E402

REALISTIC = str(HERE / "bench/correlation-realistic.toml")


def chunk_script(tree: Path) -> str:
    """The chunk script a tree's worker sends (farm/correlation/decide.py: CHUNK_LUA)."""
    folder = tree / "farm" / "correlation"
    missing = [name for name in ("state.lua", "chunk.lua") if not (folder / name).is_file()]
    if missing:
        raise SystemExit(f"{tree} has no farm/correlation/{' or '.join(missing)}: "
                         "give a checkout of farm (e.g. a git worktree)")
    return (folder / "state.lua").read_text() + (folder / "chunk.lua").read_text()


def record(client, provider: str, args: argparse.Namespace) -> list[tuple[bytes, bytes]]:
    """(memo key, request) of every correlation call one pass of the provider's stream makes."""
    cfg = bench.bench_config(argparse.Namespace(
        rules=str(bench.EXAMPLE_RULES), correlation=args.correlation, maintenance="none",
        raw_sample=0.0))
    pipeline = Pipeline(cfg, client, Keys("bench"))
    if not pipeline.correlation.enabled:
        raise SystemExit(f"{args.correlation} holds no correlation rule: nothing to replay")
    decider = pipeline.correlation.decider
    send = decider.decide
    calls: list[tuple[bytes, bytes]] = []

    def recording(batch_id, tenant, sent_at, start, end, items, rules):
        calls.append((decider.keys.incidents_memo(batch_id, tenant).encode(),
                       decider.chunk_request(tenant, sent_at, start, end, items, rules)))
        return send(batch_id, tenant, sent_at, start, end, items, rules)

    decider.decide = recording
    raws, _ = bench.batches(bench.Population(provider, args.population), args.alerts,
                            args.batch_events, args.changed_every)
    bench.run_once(pipeline, client, raws)
    return calls


def replay(client, script: str, calls: list[tuple[bytes, bytes]]) -> float:
    """Redis's microseconds for the calls, on an empty database."""
    client.flushdb()
    sha = client.script_load(script)
    client.config_resetstat()
    for key, request in calls:
        client.evalsha(sha, 1, key, request)
    return float(client.info("commandstats").get("cmdstat_evalsha", {}).get("usec", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--providers", default="prometheus,keep")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another checkout of farm whose scripts to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--correlation", default=REALISTIC, help="correlation rule file")
    parser.add_argument("--alerts", type=int, default=200_000, help="alerts in the pass")
    parser.add_argument("--population", type=int, default=20_000)
    parser.add_argument("--batch-events", type=int, default=200)
    parser.add_argument("--changed-every", type=int, default=5)
    args = parser.parse_args()
    args.correlation = str(Path(args.correlation).resolve())
    trees = {"this tree": HERE}
    if args.baseline is not None:
        trees = {"baseline": args.baseline.resolve(), **trees}
    scripts = {name: chunk_script(tree) for name, tree in trees.items()}

    server = RedisServer(Path(tempfile.mkdtemp(prefix="farm-bench-")), appendonly=False)
    client = redis_lib.Redis.from_url(server.start())
    try:
        print(f"{args.alerts} alerts per provider, rules: {args.correlation}, "
              f"{args.rounds} rounds, trees taking turns: "
              f"{', '.join(f'{name} ({tree})' for name, tree in trees.items())}")
        for provider in args.providers.split(","):
            calls = record(client, provider, args)
            usec: dict[str, list[float]] = {name: [] for name in trees}
            for _ in range(args.rounds):
                for name, script in scripts.items():
                    usec[name].append(replay(client, script, calls))
            for name, runs in usec.items():
                line = (f"{provider:<11} {name:<10} {statistics.median(runs) / 1e3:8.1f} ms "
                        f"({statistics.median(runs) / len(calls):6.1f} µs per call of "
                        f"{len(calls)}), rounds: {', '.join(f'{r / 1e3:.1f}' for r in runs)}")
                if name != "baseline" and "baseline" in usec:
                    ratios = [r / b for r, b in zip(runs, usec["baseline"], strict=True)]
                    line += (f"; against the baseline {statistics.median(ratios):.3f} "
                             f"({', '.join(f'{r:.3f}' for r in ratios)})")
                print(line)
    finally:
        client.close()
        server.stop()


if __name__ == "__main__":
    main()
