"""End-to-end MB/s of the realistic mix with the stateful stages on, against a baseline checkout.

    python bench/stages_e2e.py --baseline /tmp/base --runs 3 [--seconds 20]
        [--correlation bench/correlation-realistic.toml] [--maintenance bench/maintenance-5.toml]

Each round runs, in turn, this checkout (with the rule files given) and the baseline checkout
(a `git worktree` of an older commit with its own `.venv`, run without rule files), each as
`farm start --workers 2` (embedded Redis, SQLite) fed by `farm-loadgen --profile max --verify`.
End to end is the payload sent divided by the time from the first push until the farm drained.
Prints each run and the median ratio; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "bench"))

from farmrun import drive  # noqa: E402


def one_run(root: Path, seconds: int, correlation: str | None, maintenance: str | None) -> dict:
    report = drive(root, ["--rate", "60MB/s", "--profile", "max", "--duration", f"{seconds}s",
                          "--seed", "7", "--verify", "--min-achieved", "0"],
                   correlation=correlation, maintenance=maintenance)
    verdict = report.get("verify", {})
    return {"mb_per_s": report["mb_per_s"], "alerts": report["sent"]["alerts"],
            "seconds": report["end_to_end_seconds"], "loss": verdict.get("loss"),
            "ok": verdict.get("ok")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True,
                        help="a checkout of the commit to compare with, with its own .venv")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--correlation", default=str(HERE / "bench/correlation-realistic.toml"))
    parser.add_argument("--maintenance", default=str(HERE / "bench/maintenance-5.toml"))
    args = parser.parse_args()
    ratios = []
    for run in range(args.runs):
        new = one_run(HERE, args.seconds, args.correlation, args.maintenance)
        old = one_run(args.baseline, args.seconds, None, None)
        ratios.append(new["mb_per_s"] / old["mb_per_s"])
        print(f"round {run + 1}: stages on {new['mb_per_s']:.1f} MB/s ({new['alerts']:,} alerts, "
              f"verify ok={new['ok']}); baseline {old['mb_per_s']:.1f} MB/s "
              f"({old['alerts']:,} alerts, ok={old['ok']}); ratio {ratios[-1]:.2f}", flush=True)
    print(f"median ratio, stages on / baseline: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
