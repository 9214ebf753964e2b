"""Helpers of the maintenance tests: the CLI against a test farm, alerts of a few services,
pushing them, reading metrics and the records a pipeline produced."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import orjson

from farm.pipeline import unpack_record
from farm.wire import encode_batch

# A worker looks for window changes at most once a second (farm/maintenance/sources.py): a
# batch processed longer than that after `add` or `end` returned is judged by the change.
WORKERS_SEE_CHANGES = 1.5


def farm_cli(config: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "farm.cli", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def events(phase: str, services: list[str]) -> list[dict]:
    return [{"name": f"{phase} alert {n} on {service}", "service": service,
             "severity": "warning", "status": "firing"} for n, service in enumerate(services)]


def stored(outcome) -> dict[str, dict]:
    """eventId -> document of the history rows in a batch's records (SQLite encoder)."""
    found = {}
    for record in outcome.records:
        _sent_at, _n, body = unpack_record(record)
        history = msgpack.unpackb(body)[0]  # (history, current, bumps[, incidents])
        found.update({row[0]: orjson.loads(row[7]) for row in history})
    return found


def push(redis, batch_id: str, batch_events: list[dict]) -> None:
    redis.lpush("farm:q:normal", encode_batch(batch_events, "keep", batch_id=batch_id,
                                              sent_at=time.time()))


def sample(metrics: str, name: str, **labels: str) -> float | None:
    """The value of one series in a Prometheus text exposition, whatever the label order."""
    for line in metrics.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or "")) == labels:
            return float(match.group(2))
    return None
