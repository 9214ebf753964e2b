"""What a Redis master failover loses, with and without [redis] wait_replicas: a farm takes
unique alerts through its gateway (4 senders, one alert per request) from a master with one
replica; once --before-kill alerts were accepted (202) the master is killed with SIGKILL, the
replica is promoted (REPLICAOF NO ONE) and the farm restarted on it. Prints, per run, the
alerts accepted, the requests refused (503 or no answer) and the accepted alerts never stored.
Runs alternate wait_replicas 0 and 1. --replica-stall S stops the replica (SIGSTOP) for S
seconds just before the master dies, as a replica lagging S seconds behind would be.

    python bench/failover.py --runs 3 --before-kill 300 [--replica-stall 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.failover import failover_run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each setting")
    parser.add_argument("--before-kill", type=int, default=300,
                        help="alerts accepted before the master is killed")
    parser.add_argument("--replica-stall", type=float, default=0.0,
                        help="seconds the replica is stopped before the master dies")
    args = parser.parse_args()
    totals: dict[int, list] = {0: [], 1: []}
    for run in range(args.runs):
        for wait in (0, 1):
            with tempfile.TemporaryDirectory(prefix="farm-failover-") as folder:
                outcome = failover_run(Path(folder), wait, args.before_kill,
                                       replica_stall=args.replica_stall)
            totals[wait].append(outcome)
            print(f"run {run + 1} wait_replicas={wait}: accepted {outcome.accepted}, "
                  f"refused {outcome.refused}, lost {outcome.lost}", flush=True)
    for wait, outcomes in totals.items():
        lost = sum(o.lost for o in outcomes)
        accepted = sum(o.accepted for o in outcomes)
        print(f"wait_replicas={wait}: {lost} of {accepted} accepted alerts lost over "
              f"{len(outcomes)} failovers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
