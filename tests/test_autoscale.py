"""[workers] count = "auto": the decision (farm/autoscale.py) on real measurements, the backlog
signals it and external autoscalers read (farm/backlog.py) on a real Redis, and a real farm that
grows under a backlog, shrinks when idle, and loses nothing on the way."""

from __future__ import annotations

import urllib.request

import psutil
import pytest

from farm import backlog
from farm.autoscale import Autoscaler, Backlog
from farm.config import ConfigError, load
from farm.redis_keys import Keys
from farm.wire import encode_batch
from tests.support.batches import push_batches
from tests.support.farms import FarmProcess, write_config
from tests.support.faults import BATCHES, PER_BATCH, check_everything_stored_once, push_backlog
from tests.support.waiting import wait_until

KEYS = Keys("farm")


def scaler(**over) -> Autoscaler:
    options = dict(low=1, high=4, up_backlog=10, up_age=5.0, up_after=10.0, down_after=30.0)
    options.update(over)
    return Autoscaler(**options)


def test_a_worker_is_added_only_after_the_backlog_stayed_high_for_the_whole_period():
    s = scaler()
    assert s.observe(0.0, Backlog(50, 1.0)) is None
    assert s.observe(9.0, Backlog(50, 1.0)) is None
    decision = s.observe(10.0, Backlog(50, 1.0))
    assert decision is not None and (decision.direction, decision.target) == ("up", 2)
    # The clock restarts: 20 batches is still more than 10 per worker, yet a new period is due.
    assert s.observe(15.0, Backlog(50, 1.0)) is None
    assert s.observe(25.0, Backlog(50, 1.0)).target == 3


def test_a_break_in_the_backlog_restarts_the_clock():
    s = scaler()
    s.observe(0.0, Backlog(50, 1.0))
    s.observe(8.0, Backlog(3, 1.0))  # caught up for a moment: not behind, not idle
    assert s.observe(12.0, Backlog(50, 1.0)) is None
    assert s.observe(22.0, Backlog(50, 1.0)).target == 2


def test_an_old_batch_is_behind_even_when_few_wait():
    s = scaler()
    s.observe(0.0, Backlog(1, 6.0))
    assert s.observe(10.0, Backlog(1, 6.0)).direction == "up"


def test_idle_queues_retire_one_worker_per_period_down_to_min():
    s = scaler(low=2, target=4)
    assert s.observe(0.0, Backlog(0, None)) is None
    assert s.observe(30.0, Backlog(0, None)).target == 3
    assert s.observe(45.0, Backlog(0, None)) is None  # a new period starts after a change
    assert s.observe(74.0, Backlog(0, None)) is None
    assert s.observe(75.0, Backlog(0, None)).target == 2
    assert s.observe(200.0, Backlog(0, None)) is None  # never below min


def test_the_count_never_goes_above_max():
    s = scaler(high=2, up_after=0.0)
    assert s.observe(0.0, Backlog(999, 60.0)).target == 2
    assert s.observe(1.0, Backlog(999, 60.0)) is None


def test_max_zero_means_one_per_cpu_and_min_above_max_is_refused(tmp_path):
    cfg = load(env={"FARM_WORKERS_COUNT": "auto", "FARM_WORKERS_MIN": "2"})
    assert cfg.workers.count == "auto"
    assert Autoscaler.from_config(cfg, cpus=8).high == 8
    assert Autoscaler.from_config(cfg, cpus=1).high == 2  # min wins over the CPU count
    path = tmp_path / "farm.toml"
    path.write_text('[workers]\ncount = "auto"\nmin = 3\nmax = 2\n')
    with pytest.raises(ConfigError, match=r"\[workers\] min = 3 is more than"):
        load(path, env={})
    path.write_text('[workers]\ncount = "many"\n')
    with pytest.raises(ConfigError, match="must be a whole number or 'auto'"):
        load(path, env={})


def test_backlog_signals_read_batches_bytes_and_the_oldest_send_time(redis):
    key = KEYS.queue("normal")
    assert backlog.read_queue(redis, key) == backlog.EMPTY
    for sent_at in (1000.0, 1001.0, 1002.0):  # LPUSH: the first pushed is taken first
        redis.lpush(key, encode_batch([{"n": sent_at}], "keep", sent_at=sent_at))
    redis.lpush(key, b"not a batch")
    signal = backlog.read_queue(redis, key)
    assert signal.batches == 4 and signal.bytes > 0
    assert signal.oldest_sent_at == 1000.0 and signal.oldest_age(now=1010.0) == 10.0
    merged = backlog.merge([signal, backlog.EMPTY, backlog.QueueSignal(2, 10, 900.0)])
    assert (merged.batches, merged.bytes, merged.oldest_sent_at) == (6, signal.bytes + 10, 900.0)


def auto_config(tmp_path, redis_url):
    extra = ('count = "auto"\nmin = 1\nmax = 2\nscale_up_backlog = 5\nscale_up_age_seconds = 1\n'
             'scale_up_after_seconds = 1\nscale_down_after_seconds = 2\nring_mb = 1\n')
    return write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url, extra=extra)


def metric(farm: FarmProcess, name: str) -> float | None:
    with urllib.request.urlopen(f"http://{farm.http}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


@pytest.mark.slow
def test_an_auto_farm_grows_under_a_backlog_and_shrinks_when_idle(tmp_path, redis, redis_url):
    config = auto_config(tmp_path, redis_url)
    with FarmProcess(config, workers=None) as farm:  # no --workers: count = "auto" decides
        assert farm.status()["scaling"] == dict(farm.status()["scaling"], target=1, max=2)
        # One worker alone can drain this backlog in under a second on a quiet machine, before
        # the backlog has been behind for scale_up_after_seconds; stalled, it cannot.
        stalled = psutil.Process(farm.children()["worker-0"])
        stalled.suspend()  # SIGSTOP
        try:
            batches = push_backlog(redis)
            wait_until(lambda: farm.status()["scaling"]["target"] == 2, "a second worker", 120)
            wait_until(lambda: farm.status()["scaling"]["running"] == 2, "it running", 120)
        finally:
            stalled.resume()
        check_everything_stored_once(farm, tmp_path / "data", batches, redis)
        wait_until(lambda: farm.status()["scaling"]["target"] == 1, "a retirement", 120)
        wait_until(lambda: farm.status()["scaling"]["running"] == 1, "the drain", 120)
        doc = farm.status()
        assert doc["scaling"]["decisions"]["up"] >= 1 and doc["scaling"]["decisions"]["down"] >= 1
        assert metric(farm, "farm_workers_target") == 1.0
        assert metric(farm, 'farm_backlog_batches{lane="normal"}') == 0.0
        assert metric(farm, 'farm_backlog_oldest_age_seconds{lane="normal"}') == 0.0
        assert metric(farm, "farm_nodes_live") == 1.0
        assert metric(farm, 'farm_autoscale_decisions_total{direction="down"}') >= 1
        # The retired worker drained: nothing of it is left in flight, nothing was counted twice.
        more = push_batches(redis, BATCHES, PER_BATCH, offset=BATCHES * PER_BATCH)
        check_everything_stored_once(farm, tmp_path / "data", batches + more, redis)
    log = farm.log.read_text()
    # Decided while the only worker was stalled: the whole backlog was waiting.
    assert f"autoscale up: 1 -> 2 workers ({BATCHES} batches waiting" in log
    assert "autoscale down: 2 -> 1 workers" in log
    assert "worker-1 retired" in log
