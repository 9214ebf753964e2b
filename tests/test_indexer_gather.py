"""The indexer gathers records for `[store] gather_ms` before it hands them to an idle store, so
tiny transactions do not each pay a commit's fixed cost; its stop commits what it gathered."""

from __future__ import annotations

import os
import signal
import sqlite3
import time

from tests.support.batches import push_batches
from tests.support.farms import FarmProcess, write_config
from tests.support.waiting import wait_until

BATCHES, PER_BATCH = 8, 5


def committed_transactions(data) -> int:
    db = sqlite3.connect(f"file:{data / 'farm.db'}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute("SELECT count(*) FROM commits").fetchone()[0]
    finally:
        db.close()


def stored_alerts(data) -> int:
    db = sqlite3.connect(data / "farm.db", timeout=30)
    try:
        return db.execute("SELECT count(*) FROM alerts").fetchone()[0]
    finally:
        db.close()


def test_records_gathered_for_an_idle_store_wait_and_the_indexers_stop_commits_them(
        tmp_path, redis, redis_url):
    data = tmp_path / "data"
    # A gathering window far longer than this test: whatever is committed before the indexer
    # is told to stop was handed over early.
    config = write_config(tmp_path / "farm.toml", data, redis_url,
                          extra="[store]\ncommit_ms = 60000\ngather_ms = 60000\n")
    farm = FarmProcess(config, workers=1).start()
    try:
        push_batches(redis, BATCHES, PER_BATCH)
        wait_until(lambda: redis.llen("farm:q:normal") == 0, "the worker to take every batch")
        time.sleep(2.0)  # an indexer without a gathering window commits the first at once
        assert committed_transactions(data) == 0
        os.kill(farm.children()["indexer"], signal.SIGTERM)  # it drains: commits, then exits
        farm.wait_drained()
        assert stored_alerts(data) == BATCHES * PER_BATCH
        assert committed_transactions(data) < BATCHES
        assert farm.terminate(120) == 0
    finally:
        farm.kill()
