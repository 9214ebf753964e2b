"""Maintenance windows in the pipeline and in a running farm: a redelivered batch gets the same
result; `farm maintenance add|end` against a real farm (supervisor, workers, indexer, SQLite,
real Redis) opens and closes windows mid-run with the account exact; `farm-loadgen --verify`
balances with windows active."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import orjson

from farm import config as config_mod
from farm.pipeline import Pipeline
from farm.redis_keys import Keys
from farm.wire import encode_batch
from tests.support.farms import FarmProcess, write_config
from tests.support.loadgen_runs import run_cli as run_loadgen
from tests.support.maintenance import (
    WORKERS_SEE_CHANGES,
    events,
    farm_cli,
    push,
    sample,
    stored,
)

MIX = "prometheus:60,grafana:20,datadog:10,zabbix:5,keep:5"


# -- in the pipeline, on a real Redis ---------------------------------------------------------

def pipeline_with_windows(tmp_path: Path, redis_url: str, windows: str, redis) -> Pipeline:
    (tmp_path / "windows.toml").write_text(windows)
    path = tmp_path / "farm.toml"
    path.write_text(f'[redis]\nurl = "{redis_url}"\n[maintenance]\nrules = "windows.toml"\n')
    return Pipeline(config_mod.load(path, env={}), redis, Keys("farm"))


def stored_ids(outcome) -> list[str]:
    return sorted(stored(outcome))


DB_WINDOW = """
[[window]]
name = "db"
start = "2026-12-05T02:00:00Z"
end = "2026-12-05T03:00:00Z"
condition = 'service == "db"'
"""


def test_a_redelivered_batch_gets_the_same_result_after_the_window_ended(tmp_path, redis,
                                                                         redis_url):
    pipeline = pipeline_with_windows(tmp_path, redis_url, DB_WINDOW, redis)
    inside = 1_796_437_800.0  # 2026-12-05T02:30:00Z
    raw = encode_batch(events("b", ["db", "web", "db", "api"]), "keep", batch_id="b1",
                       sent_at=inside)
    first = pipeline.process(raw)
    assert first.counts["alerts_received"] == 4 and first.counts["alerts_maintenance"] == 2
    assert first.counts["alerts_indexed"] == 2
    assert stored_ids(first) == ["b1:1", "b1:3"]  # the dropped keep their numbers
    assert first.maintenance == {("db", "dropped"): 2}
    # Redelivered (its ack was lost) long after the window closed: judged at its sent_at.
    again = pipeline.process(raw)
    assert again.counts == first.counts and stored_ids(again) == stored_ids(first)
    # The same alerts sent after the window: nothing dropped.
    later = pipeline.process(encode_batch(events("b", ["db", "web", "db", "api"]), "keep",
                                          batch_id="b2", sent_at=inside + 3600))
    assert later.counts["alerts_maintenance"] == 0 and later.counts["alerts_indexed"] == 2
    assert later.counts["alerts_duplicate"] == 2  # web and api, already stored by b1


def test_a_redelivery_after_the_windows_changed_decides_afresh_instead_of_misreplaying(
        tmp_path, redis, redis_url):
    pipeline = pipeline_with_windows(tmp_path, redis_url, DB_WINDOW, redis)
    inside = 1_796_437_800.0
    pipeline.process(encode_batch(events("x", ["web"]), "keep", batch_id="seen", sent_at=inside))
    # Position 0 of this batch is dropped; the web alert (position 1) is a full duplicate.
    raw = encode_batch(events("y", ["db"]) + events("x", ["web"]), "keep", batch_id="b3",
                       sent_at=inside)
    first = pipeline.process(raw)
    assert first.counts["alerts_maintenance"] == 1 and first.counts["alerts_duplicate"] == 1
    # The window is removed from the file before the batch is redelivered: the db alert is
    # new now, and must not inherit the web alert's "full duplicate" from the memo.
    (tmp_path / "windows.toml").write_text("")
    pipeline.maintenance.refresh()
    again = pipeline.process(raw)
    assert again.counts["alerts_maintenance"] == 0
    assert again.counts["alerts_indexed"] == 1 and again.counts["alerts_duplicate"] == 1
    assert stored_ids(again) == ["b3:0"]


def test_suppressed_alerts_are_stored_with_their_status(tmp_path, redis, redis_url):
    pipeline = pipeline_with_windows(tmp_path, redis_url, DB_WINDOW + """
[[window]]
name = "cache"
start = "2026-12-05T02:00:00Z"
end = "2026-12-05T03:00:00Z"
condition = 'service == "cache" && severity <= "warning"'
suppress = true
recover_previous_status = true
""", redis)
    out = pipeline.process(encode_batch(events("s", ["cache", "web"]), "keep", batch_id="s1",
                                        sent_at=1_796_437_800.0))
    assert out.counts["alerts_indexed"] == 2 and out.counts["alerts_maintenance"] == 0
    assert out.maintenance == {("cache", "suppressed"): 1}
    docs = stored(out)
    assert (docs["s1:0"]["status"], docs["s1:0"]["previous_status"]) == ("maintenance", "firing")
    assert docs["s1:1"]["status"] == "firing" and "previous_status" not in docs["s1:1"]


def test_alerts_kept_in_maintenance_are_held_back_from_correlation(tmp_path, redis, redis_url):
    (tmp_path / "correlation.toml").write_text(
        '[[rule]]\nname = "warnings"\ncondition = \'severity == "warning"\'\n')
    (tmp_path / "windows.toml").write_text(DB_WINDOW.replace('"db"', '"cache"', 2) +
                                           "suppress = true\nrecover_previous_status = true\n")
    path = tmp_path / "farm.toml"
    path.write_text(f'[redis]\nurl = "{redis_url}"\n[maintenance]\nrules = "windows.toml"\n'
                    f'[correlation]\nrules = "correlation.toml"\n')
    pipeline = Pipeline(config_mod.load(path, env={}), redis, Keys("farm"))
    inside = 1_796_437_800.0
    during = pipeline.process(encode_batch(events("c", ["cache", "web"]), "keep",
                                           batch_id="c1", sent_at=inside))
    assert during.maintenance == {("cache", "suppressed"): 1}
    assert during.correlation.matched == {"warnings": 1}  # web only
    docs = stored(during)
    assert "incident" not in docs["c1:0"] and docs["c1:1"]["incident"]
    after = pipeline.process(encode_batch(events("d", ["cache"]), "keep", batch_id="d1",
                                          sent_at=inside + 3600))
    assert after.correlation.matched == {"warnings": 1}


# -- a running farm ---------------------------------------------------------------------------

def test_windows_opened_and_closed_mid_run_drop_exactly_what_they_took(tmp_path, redis,
                                                                        redis_url):
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url)
    services = ["db", "web", "cache", "db", "api"]
    with FarmProcess(config, workers=2) as farm:
        for n in range(4):
            push(redis, f"before{n}", events(f"before{n}", services))
        farm_cli(config, "maintenance", "add", "--name", "db", "--condition",
                 'service == "db"')
        farm_cli(config, "maintenance", "add", "--name", "cache", "--suppress",
                 "--recover-previous-status", "--condition", 'service == "cache"')
        time.sleep(WORKERS_SEE_CHANGES)
        for n in range(4):
            push(redis, f"during{n}", events(f"during{n}", services))
        listed = {w["name"]: w["state"]
                  for w in json.loads(farm_cli(config, "maintenance", "list", "--json"))}
        assert listed == {"db": "active", "cache": "active"}
        farm_cli(config, "maintenance", "end", "db")
        farm_cli(config, "maintenance", "end", "cache")
        time.sleep(WORKERS_SEE_CHANGES)
        for n in range(4):
            push(redis, f"after{n}", events(f"after{n}", services))
        doc = farm.wait_drained(expected_received=60)
        _code, metrics = farm.get("/metrics")
        status = farm_cli(config, "status")
    assert "alerts_maintenance" in status
    assert "received = indexed + duplicate + dead + maintenance + empty + expired: every alert " \
        "accounted for" in status
    counters = doc["counters"]
    assert counters["alerts_received"] == 60 and counters["alerts_maintenance"] == 8
    assert counters["alerts_indexed"] == 52
    assert counters["alerts_duplicate"] == counters["alerts_dead"] == 0
    assert sample(metrics, "farm_maintenance_alerts_total", window="db", action="dropped") == 8
    assert sample(metrics, "farm_maintenance_alerts_total", window="cache",
                  action="suppressed") == 4
    assert sample(metrics, "farm_stat_alerts_maintenance_total") == 8

    db = sqlite3.connect(tmp_path / "data" / "farm.db")
    docs = {row[0]: orjson.loads(row[1]) for row in db.execute("SELECT eventId, doc FROM alerts")}
    dropped = {f"during{n}:{i}" for n in range(4) for i in (0, 3)}
    every = {f"{phase}{n}:{i}" for phase in ("before", "during", "after") for n in range(4)
             for i in range(5)}
    assert set(docs) == every - dropped
    for event_id, version in docs.items():
        if event_id.startswith("during") and version["service"] == "cache":
            assert (version["status"], version["previous_status"]) == ("maintenance", "firing")
        else:
            assert version["status"] == "firing" and "previous_status" not in version


def test_loadgen_verify_balances_with_windows_active(tmp_path, redis, redis_url):
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url)
    with FarmProcess(config, workers=2):
        farm_cli(config, "maintenance", "add", "--name", "no datadog", "--condition",
                 'providerType == "datadog"')
        farm_cli(config, "maintenance", "add", "--name", "quiet grafana", "--suppress",
                 "--condition", 'providerType == "grafana"')
        time.sleep(WORKERS_SEE_CHANGES)
        done = run_loadgen("--config", str(config), "--rate", "1MB/s", "--duration", "4s",
                           "--mix", MIX, "--verify", "--json", "--quiet",
                           "--seed", "7", timeout=180)
    assert done.returncode == 0, done.stderr
    checked = json.loads(done.stdout)["verify"]
    assert checked["loss"] is False and checked["counter_problems"] == []
    assert checked["maintenance_dropped"] > 0
    assert checked["missing_dropped_by_windows"] is True
    counters = checked["farm_counters"]
    assert counters["alerts_maintenance"] == checked["maintenance_dropped"]
    assert counters["alerts_received"] == checked["sent"] == (
        counters["alerts_indexed"] + counters["alerts_duplicate"] + counters["alerts_dead"]
        + counters["alerts_maintenance"])
