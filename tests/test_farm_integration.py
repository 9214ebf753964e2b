"""A real farm (supervisor, 2 workers, indexer) on a real Redis, into SQLite."""

from __future__ import annotations

import psutil

from farm.sinks.sqlite_schema import open_reader
from tests.support.batches import batch_ids, push_batches
from tests.support.farms import FarmProcess, write_config


def test_two_workers_store_exactly_the_expected_rows(tmp_path, redis, redis_url):
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url)
    with FarmProcess(config, workers=2) as farm:
        batches = push_batches(redis, 60, 50)
        # The same 3000 alerts again, in new batches: all full duplicates.
        repeats = push_batches(redis, 60, 50)
        doc = farm.wait_drained(expected_received=6000)
    counters = doc["counters"]
    assert counters["alerts_received"] == 6000
    assert counters["alerts_indexed"] + counters["alerts_duplicate"] == 6000
    assert counters["alerts_duplicate"] == 3000
    assert counters["alerts_dead"] == 0
    assert counters["batches_received"] == 120

    db = open_reader(tmp_path / "data" / "farm.db")  # the current state is in its own file
    stored = {row[0] for row in db.execute("SELECT eventId FROM alerts")}
    assert len(stored) == 3000
    # Every alert is stored once, under whichever copy was decided first.
    expected_one_of = [(f"{a}:{i}", f"{b}:{i}")
                       for a, b in zip(batch_ids(batches), batch_ids(repeats), strict=True)
                       for i in range(50)]
    assert all((x in stored) != (y in stored) for x, y in expected_one_of)
    current = db.execute("SELECT count(*), sum(duplicates) FROM alerts_current").fetchone()
    assert current == (3000, 3000)


def test_more_workers_than_cpus_get_one_warning_line_and_the_farm_still_runs(tmp_path,
                                                                           redis_url):
    cpus = len(psutil.Process().cpu_affinity())
    crowded = write_config(tmp_path / "crowded.toml", tmp_path / "crowded", redis_url)
    with FarmProcess(crowded, workers=cpus + 1) as farm:
        assert len(farm.status()["workers"]) == cpus + 1
        warnings = [line for line in farm.tail(200).splitlines() if "workers on" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"farm: warning: {cpus + 1} workers on {cpus} CPUs (")
    assert warnings[0].endswith(f"--workers {cpus} (one per CPU) is usually fastest")
    single = write_config(tmp_path / "single.toml", tmp_path / "single", redis_url)
    with FarmProcess(single, workers=1) as farm:
        assert "warning" not in farm.tail(200)
