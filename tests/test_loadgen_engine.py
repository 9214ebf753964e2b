"""--verify against a farm that indexes into a real engine: the engine reader, and latency from
farm's own histogram."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from loadgen.latency import percentiles
from tests.support.farms import FarmProcess, engine_store_table, write_config

pytestmark = [pytest.mark.engine, pytest.mark.slow]


def test_histogram_percentiles_interpolate_within_buckets():
    before = {0.1: 10.0, 0.5: 10.0, 1.0: 10.0, float("inf"): 10.0}
    after = {0.1: 10.0, 0.5: 60.0, 1.0: 110.0, float("inf"): 110.0}
    got = percentiles(before, after)
    assert got["p50"] == pytest.approx(0.5)      # 50 of 100 new ones at or below 0.5 s
    assert got["p99"] == pytest.approx(0.99)
    assert percentiles(after, after)["p50"] is None


def test_verify_reads_the_engine_and_reports_no_loss(tmp_path, redis_url, redis, engine_url):
    prefix = f"t{uuid.uuid4().hex[:10]}"
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url,
                          extra=engine_store_table(engine_url, prefix))
    with FarmProcess(config, workers=2):
        result = subprocess.run(
            [sys.executable, "-m", "loadgen.cli", "--config", str(config), "--rate", "1MB/s",
             "--duration", "5s", "--seed", "7", "--mix", "prometheus:70,keep:30", "--verify",
             "--json", "--quiet", "--min-achieved", "0"],  # the account, not the rate
            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout[:3000]
    doc = json.loads(result.stdout)
    verify = doc["verify"]
    assert verify["loss"] is False and verify["missing"] == 0
    assert verify["stored"] == verify["expected_stored"] > 0
    assert verify["latency_seconds"]["p50"] is not None
    assert "histogram" in verify["latency_note"]


def test_an_incident_storm_balances_its_incidents_in_the_engine(tmp_path, redis_url, redis,
                                                                 engine_url):
    prefix = f"t{uuid.uuid4().hex[:10]}"
    rules = Path(__file__).resolve().parent.parent / "configs" / "correlation" / "storm.toml"
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url,
                          extra=engine_store_table(engine_url, prefix)
                          + f'\n[correlation]\nrules = "{rules}"\n')
    with FarmProcess(config, workers=2):
        result = subprocess.run(
            [sys.executable, "-m", "loadgen.cli", "--config", str(config), "--rate", "1MB/s",
             "--duration", "6s", "--seed", "5", "--mix", "prometheus:70,keep:30", "--profile",
             "incident-storm", "--storm-hosts", "6", "--storm-alerts", "5", "--storm-waves", "2",
             "--verify", "--json", "--quiet", "--min-achieved", "0"],
            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout[:3000]
    incidents = json.loads(result.stdout)["verify"]["incidents"]
    assert incidents["checked"] and incidents["ok"]
    assert incidents["expected"] == incidents["stored"] == incidents["stored_resolved"] == 12
