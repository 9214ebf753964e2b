"""`[redis] max_batch_age`: a batch older than that when a worker takes it goes to the
dead-letter list as `expired`, counted exactly (alerts_expired, batches_expired), and the
account still balances; younger batches are processed as usual."""

from __future__ import annotations

import time

from farm.deadletters import decode_letter
from farm.redis_keys import SETTLED, Keys
from farm.wire import encode_batch
from tests.support.batches import alertmanager_webhook
from tests.support.farms import FarmProcess, write_config

KEYS = Keys("farm")


def test_stale_batches_are_dead_lettered_as_expired_and_counted(tmp_path, redis, redis_url):
    now = time.time()
    stale = [encode_batch([alertmanager_webhook(b * 10 + i) for i in range(3)], "prometheus",
                          sent_at=now - 7200) for b in range(4)]
    fresh = [encode_batch([alertmanager_webhook(100 + b * 10 + i) for i in range(5)],
                          "prometheus") for b in range(2)]
    for raw in stale + fresh:
        redis.lpush(KEYS.queue("normal"), raw)
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url)
    config.write_text(config.read_text().replace('prefix = "farm"\n',
                                                 'prefix = "farm"\nmax_batch_age = "1h"\n'))
    with FarmProcess(config, workers=1) as farm:
        counters = farm.wait_drained(expected_received=4 * 3 + 2 * 5)["counters"]
    assert counters["alerts_expired"] == 12 and counters["batches_expired"] == 4
    assert counters["alerts_indexed"] == 10 and counters["batches_received"] == 6
    assert counters["alerts_received"] == sum(counters[name] for name in SETTLED)
    letters = [decode_letter(raw) for raw in redis.lrange(KEYS.dlq, 0, -1)]
    assert sorted(letter["reason"] for letter in letters) == ["expired"] * 4
