"""Bad input lands in the dead-letter list with its reason, and processing goes on."""

from __future__ import annotations

import sqlite3

import msgpack

from farm.deadletters import decode_letter, replay
from farm.redis_keys import Keys
from farm.wire import encode_batch
from tests.support.batches import alertmanager_webhook
from tests.support.farms import FarmProcess, write_config

KEYS = Keys("farm")


def test_bad_batches_and_bad_events_are_dead_lettered_with_reasons(tmp_path, redis, redis_url):
    data = tmp_path / "data"
    config = write_config(tmp_path / "farm.toml", data, redis_url)
    good_before = encode_batch([alertmanager_webhook(1)], "prometheus", batch_id="good1")
    mixed = encode_batch([alertmanager_webhook(2), {"alerts": "not a list"},
                          alertmanager_webhook(3)], "prometheus", batch_id="mixed")
    bad = [
        b"\x00\x01garbage",
        msgpack.packb({"v": 9, "id": "v9", "provider": "keep", "sent_at": 1.0, "events": []}),
        msgpack.packb({"v": 1, "id": "nokeys"}),
    ]
    good_after = encode_batch([alertmanager_webhook(4)], "prometheus", batch_id="good2")
    with FarmProcess(config, workers=2) as farm:
        for raw in [good_before, *bad, mixed, good_after]:
            redis.lpush(KEYS.queue("normal"), raw)
        doc = farm.wait_drained(expected_received=5)
        counters = doc["counters"]
        assert counters["batches_received"] == 6
        assert counters["batches_dead"] == 3
        assert counters["alerts_dead"] == 1
        assert counters["alerts_indexed"] == 4

        letters = [decode_letter(raw) for raw in redis.lrange(KEYS.dlq, 0, -1)]
        reasons = sorted(f"{letter['stage']}: {letter['reason']}" for letter in letters)
        assert len(reasons) == 4
        assert any(r.startswith("decode: not msgpack") for r in reasons)
        assert any(r.startswith("decode: wire version 9 is not supported") for r in reasons)
        assert any(r.startswith("decode: unknown provider None") for r in reasons)
        assert any(r.startswith("normalize: BadEvent: 'alerts' must be a list") for r in reasons)
        event_letter = next(x for x in letters if x["stage"] == "normalize")
        assert event_letter["batch"] == "mixed"
        assert event_letter["payload"] == {"alerts": "not a list"}

        db = sqlite3.connect(data / "farm.db")
        stored = sorted(row[0] for row in db.execute("SELECT eventId FROM alerts"))
        assert stored == ["good1:0", "good2:0", "mixed:0", "mixed:1"]

        # A replayed bad event fails again and returns to the list; nothing is lost.
        replayed, skipped = replay(redis, farm_config(config), None)
        assert replayed == 4 and skipped == 0
        farm.wait_drained(expected_received=5 + 1)
        assert redis.llen(KEYS.dlq) == 4


def farm_config(path):
    from farm.config import load

    return load(path, env={})
