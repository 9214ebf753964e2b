"""Alerts held in maintenance get their own status back once no window holds them: a release
batch in the pipeline on a real Redis (stored again, correlated, never over a newer version,
never twice), and the maintenance watcher of a running farm (supervisor, workers, indexer,
SQLite, real Redis) releasing what an ended window held and nothing an active one holds."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest

from farm import config as config_mod
from farm.maintenance.release import RELEASE
from farm.maintenance.watcher import MaintenanceWatcher
from farm.pipeline import Pipeline
from farm.redis_keys import Keys
from farm.search import Query, search, versions
from farm.sinks.engine_client import Engine
from farm.wire import WIRE_VERSION, encode_batch
from tests.support.farms import FarmProcess, engine_store_table, write_config
from tests.support.maintenance import (
    WORKERS_SEE_CHANGES,
    events,
    farm_cli,
    push,
    sample,
    stored,
)

INSIDE = 1_796_437_800.0  # 2026-12-05T02:30:00Z, inside the window below
AFTER = INSIDE + 3600

CACHE_WINDOW = """
[[window]]
name = "cache"
start = "2026-12-05T02:00:00Z"
end = "2026-12-05T03:00:00Z"
condition = 'service == "cache"'
suppress = true
recover_previous_status = true
"""
WARNINGS_RULE = '[[rule]]\nname = "warnings"\ncondition = \'severity == "warning"\'\n'


def pipeline(tmp_path: Path, redis_url: str, redis) -> Pipeline:
    (tmp_path / "windows.toml").write_text(CACHE_WINDOW)
    (tmp_path / "correlation.toml").write_text(WARNINGS_RULE)
    path = tmp_path / "farm.toml"
    path.write_text(f'[redis]\nurl = "{redis_url}"\n[maintenance]\nrules = "windows.toml"\n'
                    f'[correlation]\nrules = "correlation.toml"\n')
    return Pipeline(config_mod.load(path, env={}), redis, Keys("farm"))


def release_batch(docs: list[dict], sent_at: float, batch_id: str | None = None) -> bytes:
    """A release batch as the watcher sends it: the stored documents and their eventIds."""
    return msgpack.packb({"v": WIRE_VERSION, "id": batch_id or uuid.uuid4().hex,
                          "tenant": "default", "provider": "keep", "sent_at": sent_at,
                          "events": docs, "control": {RELEASE: [d["eventId"] for d in docs]}})


def held(p: Pipeline) -> dict:
    """One cache alert stored in maintenance (and a web alert beside it); its stored document."""
    out = p.process(encode_batch(events("h", ["cache", "web"]), "keep", batch_id="h1",
                                 sent_at=INSIDE))
    doc = stored(out)["h1:0"]
    assert (doc["status"], doc["previous_status"]) == ("maintenance", "firing")
    return doc


def test_a_released_alert_is_stored_again_with_its_status_and_correlated(tmp_path, redis,
                                                                         redis_url):
    p = pipeline(tmp_path, redis_url, redis)
    doc = held(p)
    out = p.process(release_batch([doc], AFTER, "r1"))
    assert out.released == 1 and out.counts == {}  # the account counted it when it came
    [again] = stored(out).values()
    assert again["eventId"] == "r1:0" and again["status"] == "firing"
    assert "previous_status" not in again
    assert again["fingerprint"] == doc["fingerprint"] and again["name"] == doc["name"]
    assert again["lastReceived"] == doc["lastReceived"]
    assert again["incident"]  # held back from correlation while in maintenance, not after
    assert out.correlation.matched == {"warnings": 1}
    # Redelivered (its ack was lost): the same version again, no second membership.
    redelivered = p.process(release_batch([doc], AFTER, "r1"))
    [replayed] = stored(redelivered).values()
    assert {**replayed, "processedAt": ""} == {**again, "processedAt": ""}
    assert redelivered.correlation.opened == 0
    # The next notification of the alert is deduplicated against the released version.
    later = p.process(encode_batch(events("h", ["cache"]), "keep", batch_id="n1",
                                   sent_at=AFTER + 60))
    assert later.counts["alerts_indexed"] == 1 and stored(later)["n1:0"]["status"] == "firing"


def test_a_release_never_overwrites_a_newer_version_nor_is_stored_twice(tmp_path, redis,
                                                                        redis_url):
    p = pipeline(tmp_path, redis_url, redis)
    doc = held(p)
    # A newer notification (resolved, after the window) reaches a worker before the release.
    newer = [{**events("h", ["cache"])[0], "status": "resolved"}]
    assert p.process(encode_batch(newer, "keep", batch_id="n1",
                                  sent_at=AFTER)).counts["alerts_indexed"] == 1
    late = p.process(release_batch([doc], AFTER + 1))
    assert late.released == 0 and stored(late) == {} and late.correlation.matched == {}

    redis.flushdb()
    doc = held(p)
    first = p.process(release_batch([doc], AFTER))
    second = p.process(release_batch([doc], AFTER + 1))  # the watcher's next round, sent again
    assert first.released == 1 and second.released == 0 and stored(second) == {}


def test_events_that_are_not_held_versions_are_left_alone(tmp_path, redis, redis_url):
    p = pipeline(tmp_path, redis_url, redis)
    doc = held(p)
    firing = {**doc, "status": "firing"}
    no_previous = {k: v for k, v in doc.items() if k != "previous_status"}
    out = p.process(release_batch([firing, no_previous, doc], AFTER, "r3"))
    assert out.released == 1 and list(stored(out)) == ["r3:0"]
    bad = msgpack.packb({"v": WIRE_VERSION, "id": "bad", "tenant": "default",
                         "provider": "keep", "sent_at": AFTER, "events": [doc],
                         "control": {RELEASE: "not a list"}})
    assert p.process(bad).released == 0 and not p.process(bad).dead_letters


# -- the watcher in a running farm --------------------------------------------------------------

@pytest.fixture(params=["sqlite", "engine"])
def store_table(request, tmp_path) -> Iterator[str]:
    """The [store] table of the farm under test: SQLite, or a real OpenSearch/Elasticsearch
    node (indices of their own, dropped after)."""
    if request.param == "sqlite":
        yield ""
        return
    node = request.getfixturevalue("engine_node")
    prefix = f"release-{uuid.uuid4().hex[:8]}"
    table = engine_store_table(node.url, prefix)
    yield table
    (tmp_path / "engine.toml").write_text(table)
    engine = Engine(config_mod.load(tmp_path / "engine.toml", env={}).store)
    engine.request("DELETE", f"/{prefix}-*", ok=(200, 404))
    engine.close()


def current_statuses(cfg) -> dict[str, str]:
    return {a["eventId"]: a["status"] for a in search(cfg, Query(limit=100))}


def test_the_watcher_releases_what_an_ended_window_held_and_nothing_an_active_one_holds(
        tmp_path, redis, redis_url, store_table):
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url,
                          extra=f"[maintenance]\nrelease_seconds = 1\n{store_table}")
    cfg = config_mod.load(config, env={})
    with FarmProcess(config, workers=2) as farm:
        farm_cli(config, "maintenance", "add", "--name", "cache", "--suppress",
                 "--recover-previous-status", "--condition", 'service == "cache"')
        time.sleep(WORKERS_SEE_CHANGES)
        push(redis, "during", events("during", ["cache", "web", "cache"]))
        farm.wait_drained(expected_received=3)
        time.sleep(3)  # three rounds of the watcher while the window holds them
        assert current_statuses(cfg) == {"during:0": "maintenance", "during:1": "firing",
                                         "during:2": "maintenance"}
        farm_cli(config, "maintenance", "end", "cache")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            statuses = sorted(current_statuses(cfg).values())
            if statuses == ["firing"] * 3:
                break
            time.sleep(0.2)
        assert statuses == ["firing"] * 3
        doc = farm.wait_drained()
        _code, metrics = farm.get("/metrics")
        status = farm_cli(config, "status")
    # A round that came while a release was still on its way sends it again (and the worker
    # skips it): at least the two.
    assert doc["maintenance"]["sent"] >= 2 and doc["maintenance"]["release_seconds"] == 1
    assert "maintenance watcher: every 1s; last round on this node" in status
    counters = doc["counters"]
    assert counters["alerts_received"] == 3 and counters["alerts_indexed"] == 3
    assert sample(metrics, "farm_maintenance_released_total") == 2
    for alert in search(cfg, Query(limit=100)):
        if alert["service"] == "cache":
            newest, held_version = versions(cfg, "default", alert["fingerprint"], 10)
            assert (held_version["status"], held_version["previous_status"]) == \
                ("maintenance", "firing")
            assert newest["status"] == "firing" and "previous_status" not in newest
            assert newest["name"] == held_version["name"]


def test_one_watcher_at_a_time_makes_a_round(tmp_path, redis, redis_url):
    config = config_mod.load(write_config(tmp_path / "farm.toml", tmp_path / "nowhere",
                                          redis_url), env={})
    keys = Keys("farm")
    redis.set(keys.maintenance_release_lock, "another-node", px=60_000)
    watcher = MaintenanceWatcher(config, redis, keys, redis_url, "this-node", 60)
    # The other node's round is under way: this one reads nothing (its store does not exist).
    assert watcher.run_pass(time.time()) == 0
    assert redis.get(keys.maintenance_release_lock) == b"another-node"
