"""Volumes in the units people use, the options' checks, and one-line errors from the CLI."""

from __future__ import annotations

import json

import pytest

from farm.units import format_bytes, parse_amount, parse_rate
from loadgen.options import parse_mix, parse_range
from tests.support.loadgen_runs import plan, run_cli
from tests.support.ports import free_port


@pytest.mark.parametrize("text, bytes_per_second, alerts_per_second", [
    ("600GB/day", 600e9 / 86400, None),
    ("20MB/s", 20e6, None),
    ("1.5 GiB/h", 1.5 * 1024**3 / 3600, None),
    ("50k/s", None, 50_000),
    ("3M/min", None, 50_000),
    ("1200/s", None, 1200),
])
def test_rates_in_volume_or_alerts(text, bytes_per_second, alerts_per_second):
    rate = parse_rate(text)
    assert rate.bytes_per_second == pytest.approx(bytes_per_second)
    assert rate.alerts_per_second == pytest.approx(alerts_per_second)


@pytest.mark.parametrize("text", ["600GB", "fast", "20 parsecs/s", "10MB/fortnight", "/s"])
def test_a_bad_rate_says_what_to_write(text):
    with pytest.raises(ValueError, match="600GB/day|unknown unit"):
        parse_rate(text)


def test_amounts_are_bytes_or_alerts():
    assert parse_amount("5GB") == (5e9, "bytes")
    assert parse_amount("2M alerts") == (2e6, "alerts")
    assert parse_amount("500 alert") == (500, "alerts")
    assert format_bytes(6_944_444) == "6.94 MB"
    with pytest.raises(ValueError, match="2M alerts"):
        parse_amount("lots")


def test_mix_weights_and_their_mistakes():
    assert parse_mix("prometheus:60, keep:5,grafana:0") == {"prometheus": 60, "keep": 5}
    with pytest.raises(ValueError, match="unknown provider 'nagios'"):
        parse_mix("nagios:5")
    with pytest.raises(ValueError, match="weight of keep"):
        parse_mix("keep:lots")
    with pytest.raises(ValueError, match="at least one provider"):
        parse_mix("keep:0")
    assert parse_range("2-8", "--labels") == (2, 8)
    with pytest.raises(ValueError, match="--labels"):
        parse_range("8-2", "--labels")


def test_a_plan_splits_rate_and_total_between_producers():
    p = plan(producers=4, total="1GB", duration=None)
    assert [s.total for s in p.producers] == [250e6] * 4
    assert p.producers[0].stream.rate == pytest.approx(600e9 / 86400 / 4)
    assert p.planned == pytest.approx(1e9 / (600e9 / 86400))
    assert len({s.producer for s in p.producers}) == 4
    assert len(p.run_id) == 16


@pytest.mark.parametrize("over, message", [
    ({"duration": None}, "exactly one of --duration"),
    ({"total": "1GB"}, "exactly one of --duration"),
    ({"rate": None}, "--rate is required"),
    ({"profile": "tsunami"}, "not a profile"),
    ({"repeat": "0.8", "flap": "0.5"}, "must not exceed 1"),
    ({"producers": 0}, "--producers"),
    ({"total": "2M alerts", "duration": None}, "counts alerts but --rate"),
    ({"rate": "50k/s", "duration": "10h"}, "--verify tracks every alert"),
    ({"http_url": "http://127.0.0.1:8080", "concurrency": 0}, "--concurrency 0 must be at least 1"),
])
def test_bad_options_are_refused_with_one_line(over, message):
    with pytest.raises(ValueError, match=message) as caught:
        plan(**over)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("args, message", [
    (["--rate", "600GB", "--duration", "1s"], "is not a rate"),
    (["--rate", "1MB/s"], "exactly one of --duration"),
    (["--rate", "1MB/s", "--duration", "1s", "--mix", "nagios:1"], "unknown provider"),
    (["--rate", "1MB/s", "--duration", "1s", "--seed", "x"], "--seed"),
    (["--rate", "1MB/s", "--duration", "1s", "--redis", "redis://127.0.0.1:1"],
     "cannot reach Redis"),
])
def test_cli_errors_are_one_line(args, message):
    done = run_cli(*args)
    assert done.returncode == 2
    assert done.stderr.startswith("farm-loadgen: ") and message in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_verify_without_a_farm_is_one_line(tmp_path, redis_url):
    config = tmp_path / "farm.toml"
    config.write_text(f'[farm]\ndata_dir = "{tmp_path}"\n[redis]\nurl = "{redis_url}"\n'
                      f'[supervisor]\nhttp = "127.0.0.1:{free_port()}"\n')
    done = run_cli("--config", str(config), "--rate", "1MB/s", "--duration", "1s", "--verify")
    assert done.returncode == 2
    assert "--verify needs a running farm" in done.stderr and done.stderr.count("\n") == 1


def test_a_run_below_the_minimum_share_of_the_asked_rate_exits_5(redis, redis_url):
    # 50 GB/s is far beyond one producer on any machine: the run must come up short.
    impossible = ("--redis", redis_url, "--rate", "50GB/s", "--total", "5MB", "--seed", "3",
                  "--fingerprints", "100", "--quiet")
    done = run_cli(*impossible, "--json", timeout=300)
    assert done.returncode == 5, done.stderr
    achieved = json.loads(done.stdout)["achieved"]
    assert achieved["short"] is True and achieved["minimum_of_asked"] == 0.95
    assert achieved["of_asked"] < 0.95
    assert done.stderr.startswith("farm-loadgen: achieved ") and done.stderr.count("\n") == 1
    assert "below --min-achieved 95% (exit code 5)" in done.stderr
    table = run_cli(*impossible, timeout=300)
    assert table.returncode == 5 and "SHORT" in table.stdout
    relaxed = run_cli(*impossible, "--json", "--min-achieved", "0", timeout=300)
    assert relaxed.returncode == 0, relaxed.stderr
    assert json.loads(relaxed.stdout)["achieved"]["short"] is False
