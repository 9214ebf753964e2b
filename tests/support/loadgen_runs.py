"""Load generator plans and command-line runs for the loadgen tests."""

from __future__ import annotations

import subprocess
import sys

from loadgen.options import Plan, PlanOptions, make_plan


def plan(**over: object) -> Plan:
    """A plan from the CLI's defaults (600GB/day for 60s, two producers, verified), with the
    options in `over` changed."""
    options = dict(rate="600GB/day", duration="60s", total=None, mix="prometheus:1",
                   profile="steady", seed=1, epoch=None, fingerprints=1000, repeat="0.3",
                   flap="0.1", labels="1-6", label_values=100, size_median="1KiB",
                   size_max="64KiB", producers=2, batch_events=200, batch_bytes="256KiB",
                   batch_wait="100ms", tenant="default", redis_url="redis://x", prefix="farm",
                   http_url=None, api_key=None, concurrency=8, max_backlog="1GB", verify=True)
    options.update(over)
    return make_plan(PlanOptions(**options))


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`farm-loadgen ARGS` in a subprocess; its output is captured as text."""
    return subprocess.run([sys.executable, "-m", "loadgen.cli", *args], capture_output=True,
                          text=True, timeout=timeout)
