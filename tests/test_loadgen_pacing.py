"""Producers on a real Redis (no farm): the asked rate is held, batches land in the right lane,
and the backlog guard stops a run from filling Redis when nobody drains it."""

from __future__ import annotations

import msgpack
import pytest

from farm.providers import NORMALIZERS
from farm.wire import decode_batch
from loadgen import runner
from tests.support.loadgen_runs import plan


def run(redis_url: str, **over) -> runner.Outcome:
    options = dict(redis_url=redis_url, verify=False, producers=1,
                   mix="prometheus:60,grafana:20,datadog:10,zabbix:5,keep:5")
    options.update(over)
    the_plan = plan(**options)
    outcome = runner.run(the_plan)
    outcome.plan = the_plan
    return outcome


def test_the_asked_rate_is_held(redis, redis_url):
    outcome = run(redis_url, rate="2MB/s", duration="4s")
    # A behaviour check with room for a noisy machine; bench/loadgen.py measures accuracy.
    assert outcome.payload_bytes / outcome.seconds == pytest.approx(2e6, rel=0.10)
    assert 3.8 <= outcome.seconds <= 4.3
    assert redis.llen("farm:q:critical") + redis.llen("farm:q:normal") == outcome.batches


def test_two_producers_share_the_rate(redis, redis_url):
    outcome = run(redis_url, rate="2MB/s", duration="3s", producers=2)
    assert outcome.payload_bytes / outcome.seconds == pytest.approx(2e6, rel=0.10)


@pytest.mark.skipif(set(NORMALIZERS) < {"prometheus", "grafana", "datadog", "zabbix", "keep"},
                    reason="a provider normalizer is missing")
def test_batches_with_a_critical_alert_go_to_the_critical_lane(redis, redis_url):
    outcome = run(redis_url, rate="1MB/s", duration="2s")
    seen = {"critical": 0, "normal": 0}
    for lane in seen:
        for raw in redis.lrange(f"farm:q:{lane}", 0, -1):
            batch = decode_batch(raw)
            severities = {a["severity"] for e in batch.events
                          for a in NORMALIZERS[batch.provider](e, "2026-01-01T00:00:00Z")}
            assert ("critical" in severities) == (lane == "critical")
            seen[lane] += 1
    assert seen["critical"] and seen["normal"]
    assert sum(seen.values()) == outcome.batches


def test_the_backlog_guard_pauses_pushing(redis, redis_url):
    outcome = run(redis_url, rate="5MB/s", duration="3s", max_backlog="2MB")
    queued = sum(len(raw) for lane in ("critical", "normal")
                 for raw in redis.lrange(f"farm:q:{lane}", 0, -1))
    assert outcome.throttled > 1.0
    assert queued < 2e6 + 1e6, "at most a push or two past the mark"


def test_a_total_ends_the_run(redis, redis_url):
    outcome = run(redis_url, rate="5MB/s", duration=None, total="3MB")
    assert 3e6 <= outcome.payload_bytes < 3e6 + 70_000
    env = msgpack.unpackb(redis.lindex("farm:q:normal", 0))
    assert env["id"].startswith(outcome.plan.run_id)
