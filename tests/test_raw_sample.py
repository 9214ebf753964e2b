"""[store] raw_sample: a deterministic share of raw events is kept, the same ones when a batch is
delivered again, with the alerts they became, in SQLite and in the engine."""

from __future__ import annotations

import sqlite3

import orjson
import redis as redis_lib

from farm.config import load
from farm.redis_keys import Keys
from farm.search import raw_payloads
from farm.sinks.engine_client import Engine
from farm.sinks.raw import RawSampler, raw_index
from farm.wire import encode_batch
from tests.support.batches import alertmanager_webhook
from tests.support.farms import FarmProcess, engine_store_table, write_config

EVENTS = 300


def test_a_batch_keeps_the_same_positions_every_time_and_about_the_share_asked():
    sampler = RawSampler(0.01)
    assert sampler.positions("batch-a", 5000) == RawSampler(0.01).positions("batch-a", 5000)
    assert sampler.positions("batch-a", 5000) != sampler.positions("batch-b", 5000)
    kept = sum(len(sampler.positions(f"b{n}", 500)) for n in range(2000))
    assert 0.008 < kept / 1_000_000 < 0.012
    assert RawSampler(1.0).positions("x", 7) == range(7)
    assert not RawSampler(0.0).positions("x", 7)
    assert all(0 <= p < 10 for p in RawSampler(0.5).positions("y", 10))


def push_twice(farm: FarmProcess, redis_url: str, prefix: str) -> tuple[str, list[dict]]:
    """One batch of EVENTS single-alert webhooks, delivered twice (a redelivery)."""
    events = [alertmanager_webhook(n) for n in range(EVENTS)]
    raw = encode_batch(events, "prometheus", batch_id="rawsample-batch")
    client = redis_lib.Redis.from_url(redis_url)
    try:
        client.lpush(Keys(prefix).queue("normal"), raw)
        farm.wait_drained(expected_received=EVENTS)
        client.lpush(Keys(prefix).queue("normal"), raw)
        farm.wait_drained(expected_received=2 * EVENTS)
    finally:
        client.close()
    return "rawsample-batch", events


def expected_rows(batch_id: str, events: list[dict]) -> dict[str, dict]:
    return {f"{batch_id}/{p}": events[p] for p in RawSampler(0.5).positions(batch_id, EVENTS)}


def test_sqlite_keeps_the_sampled_events_once_with_their_alerts(tmp_path, redis_url):
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url,
                          prefix="rawsqlite", extra="[store]\nraw_sample = 0.5\n")
    with FarmProcess(config, workers=2) as farm:
        batch_id, events = push_twice(farm, redis_url, "rawsqlite")
        db = sqlite3.connect(f"file:{tmp_path / 'data' / 'farm.db'}?mode=ro", uri=True)
        rows = {i: (orjson.loads(p), orjson.loads(e)) for i, p, e in db.execute(
            "SELECT id, payload, eventIds FROM alerts_raw")}
        links = db.execute("SELECT count(*) FROM alerts_raw_fingerprints").fetchone()[0]
        db.close()
    wanted = expected_rows(batch_id, events)
    assert 0 < len(wanted) < EVENTS
    assert {i: p for i, (p, _) in rows.items()} == wanted
    for raw_id, (_, event_ids) in rows.items():
        assert event_ids == [f"{batch_id}:{raw_id.rpartition('/')[2]}"]
    assert links == len(wanted)


def test_the_engine_keeps_the_sampled_events_once_in_the_raw_index(tmp_path, redis_url,
                                                                      engine_url):
    prefix = "rawengine"
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url, prefix=prefix,
                          extra=engine_store_table(engine_url, prefix, raw_sample=0.5))
    with FarmProcess(config, workers=2) as farm:
        batch_id, events = push_twice(farm, redis_url, prefix)
    cfg = load(config, env={})
    engine = Engine(cfg.store)
    try:
        engine.request("POST", f"/{raw_index(prefix)}/_refresh")
        _, found = engine.request("POST", f"/{raw_index(prefix)}/_search",
                                  body={"size": EVENTS, "query": {"match_all": {}}})
    finally:
        engine.request("DELETE", f"/{prefix}-*", ok=(200, 404))
        engine.close()
    docs = {hit["_id"]: hit["_source"] for hit in found["hits"]["hits"]}
    wanted = expected_rows(batch_id, events)
    assert {i: orjson.loads(d["payload"]) for i, d in docs.items()} == wanted


def test_raw_payloads_read_back_by_fingerprint(tmp_path, redis_url):
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url,
                          prefix="rawread", extra="[store]\nraw_sample = 1.0\n")
    with FarmProcess(config, workers=1) as farm:
        client = redis_lib.Redis.from_url(redis_url)
        client.lpush(Keys("rawread").queue("normal"),
                     encode_batch([alertmanager_webhook(7)], "prometheus", batch_id="one"))
        client.close()
        farm.wait_drained(expected_received=1)
        cfg = load(config, env={})
        found = raw_payloads(cfg, "default", f"{7:016x}", 5)
    assert [(r["id"], r["payload"]) for r in found] == [("one/0", alertmanager_webhook(7))]
