"""farm-loadgen's spike (`--spike FACTORx:DURATION`) and its per-second `--timeline`."""

from __future__ import annotations

import json

import pytest

from loadgen.profiles import SPIKE_START
from tests.support.farms import FarmProcess, write_config
from tests.support.loadgen_runs import plan, run_cli

SPIKE_FIELDS = {"factor", "start_seconds", "end_seconds", "pre_spike_backlog_batches",
                "backlog_peak_batches", "backlog_peak_age_seconds", "recovery_seconds",
                "p99_during_seconds", "p99_after_seconds"}
ROW_FIELDS = {"t", "sent_mb_per_second", "sent_alerts_per_second",
              "committed_alerts_per_second", "backlog_batches", "backlog_age_seconds",
              "p99_seconds"}


def test_a_spike_multiplies_the_rate_for_its_length_from_a_quarter_into_the_run():
    shaped = plan(spike="10x:30s", duration="120s", profile="spike")
    shape = shaped.profile.multiplier
    assert (shape.start, shape.end) == (SPIKE_START, SPIKE_START + 30 / 120)
    assert [shape(x) for x in (0.1, 0.3, 0.6)] == [1.0, 10.0, 1.0]
    assert shaped.profile.mean == pytest.approx(1 + 9 * 30 / 120)


@pytest.mark.parametrize(("spike", "said"), [
    ("10", "FACTORx:DURATION"), ("tenx:30s", "FACTORx:DURATION"),
    ("1x:30s", "above 1"), ("10x:200s", "does not fit")])
def test_a_spike_that_cannot_be_run_is_refused_in_one_line(spike, said):
    with pytest.raises(ValueError, match=said):
        plan(spike=spike, duration="120s", profile="spike")


def test_a_spike_needs_a_duration_and_the_spike_profile():
    with pytest.raises(ValueError, match="needs --duration"):
        plan(spike="10x:30s", duration=None, total="10MB", profile="spike")
    with pytest.raises(ValueError, match="cannot go with --profile max"):
        plan(spike="10x:30s", duration="120s", profile="max", rate=None)


def test_a_spike_run_reports_backlog_recovery_and_p99_and_still_balances(tmp_path, redis,
                                                                          redis_url):
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url)
    timeline_file = tmp_path / "timeline.json"
    with FarmProcess(config, workers=2):
        # --min-achieved 0: the report's fields and the account are checked, not the rate.
        done = run_cli("--config", str(config), "--rate", "300KB/s", "--duration", "8s",
                       "--profile", "spike", "--spike", "5x:2s", "--mix", "prometheus:1",
                       "--verify", "--json", "--quiet", "--seed", "11", "--min-achieved", "0",
                       "--timeline", str(timeline_file), timeout=180)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["verify"]["ok"] and not doc["verify"]["loss"]
    spike = doc["spike"]
    assert set(spike) == SPIKE_FIELDS
    assert (spike["factor"], spike["start_seconds"], spike["end_seconds"]) == (5.0, 2.0, 4.0)
    assert spike["backlog_peak_batches"] >= 0 and spike["backlog_peak_age_seconds"] >= 0
    # --verify waited for the drain, so the backlog came back within the run's sampling.
    assert spike["recovery_seconds"] is not None and spike["recovery_seconds"] >= 0
    assert spike["p99_during_seconds"] > 0 and spike["p99_after_seconds"] > 0
    written = json.loads(timeline_file.read_text())
    assert written["spike"] == spike
    assert written["seconds"] and all(set(row) == ROW_FIELDS for row in written["seconds"])
    assert sum(row["sent_alerts_per_second"] for row in written["seconds"]) > 0


def test_a_timeline_is_written_without_a_spike(tmp_path, redis, redis_url):
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url)
    timeline_file = tmp_path / "timeline.json"
    with FarmProcess(config, workers=1):
        done = run_cli("--config", str(config), "--rate", "200KB/s", "--duration", "3s",
                       "--mix", "prometheus:1", "--verify", "--json", "--quiet", "--seed", "12",
                       "--min-achieved", "0", "--timeline", str(timeline_file), timeout=180)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["spike"] is None
    written = json.loads(timeline_file.read_text())
    assert written["spike"] is None and written["seconds"]
    assert any(row["p99_seconds"] for row in written["seconds"])
