"""Incidents under concurrency and faults, with real processes: two workers deciding the same
group at the same moment, SIGKILLed workers and indexers in an incident storm, and the CLI on a
running farm."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time

import orjson
import pytest

from farm.wire import encode_batch
from tests.support.correlation_runs import START, alert
from tests.support.farms import FarmProcess, write_config

pytestmark = pytest.mark.slow

STORM_RULES = """
[[rule]]
name = "host"
condition = 'labels.kind == "storm"'
grouping_criteria = ["labels.host"]
timeframe = "1d"
threshold = 5
resolve_on = "all"
incident_name_template = "Storm on {{ alert.labels.host }}"
"""
HOSTS, PER_HOST, PER_BATCH = 40, 10, 10


# -- the race ------------------------------------------------------------------------------

def _race_worker(config_path: str, redis_url: str, prefix: str, side: int, rounds: int,
                 barrier, results) -> None:
    import redis as redis_lib

    from farm import config
    from farm.pipeline import Pipeline
    from farm.redis_keys import Keys

    cfg = config.load(config_path, env={})
    client = redis_lib.Redis.from_url(redis_url)
    pipeline = Pipeline(cfg, client, Keys(prefix))
    seen = []
    for n in range(rounds):
        raw = encode_batch([alert(f"r{n}-{side}", labels={"kind": "storm", "host": f"h{n}"})],
                           "keep", sent_at=START + n, batch_id=f"race-{n}-{side}")
        barrier.wait()
        out = pipeline.process(raw)
        seen.append(out.records and _alert_incident(out.records[0]))
    results.put((side, seen))


def _alert_incident(record: bytes) -> str:
    import msgpack

    from farm.pipeline import unpack_record

    history = msgpack.unpackb(unpack_record(record)[2])[0]
    return orjson.loads(history[0][7])["incident"]


def test_two_workers_adding_to_one_group_at_once_make_one_incident(tmp_path, redis, redis_url):
    rules = tmp_path / "rules.toml"
    rules.write_text(STORM_RULES.replace("threshold = 5", "threshold = 1"))
    config_path = tmp_path / "farm.toml"
    config_path.write_text(f'[correlation]\nrules = "{rules}"\n')
    rounds = 40
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_race_worker, args=(str(config_path), redis_url, "race", side,
                                                    rounds, barrier, results))
             for side in (0, 1)]
    for proc in procs:
        proc.start()
    got = dict(results.get(timeout=300) for _ in procs)
    for proc in procs:
        proc.join(60)
    for n in range(rounds):
        assert got[0][n] == got[1][n], f"round {n}: two incidents for one group"
    incidents = [k for k in redis.scan_iter(match="race:incident:*")]
    assert len(incidents) == rounds
    for key in incidents:
        assert redis.hget(key, "count") == b"2"


# -- the storm -----------------------------------------------------------------------------

def storm_wave(wave: int, resolving: set[int]) -> list[bytes]:
    """Every host's alerts once: hosts in `resolving` send them resolved, the others firing."""
    batches = []
    events = []
    for host in range(HOSTS):
        for k in range(PER_HOST):
            status = "resolved" if host in resolving else "firing"
            events.append(alert(f"h{host}-a{k}", status,
                                labels={"kind": "storm", "host": f"h{host}"},
                                description=f"wave {wave}"))
    for start in range(0, len(events), PER_BATCH):
        batches.append(encode_batch(events[start:start + PER_BATCH], "keep",
                                    sent_at=START + wave * 60 + start / 1000))
    return batches


WAVES = [set(), set(range(0, HOSTS, 2)), set(range(1, HOSTS, 4))]


def stored_incidents(data_dir) -> set[tuple]:
    """What must not depend on crashes: per incident its group, status, counts, visibility,
    whether it follows an earlier one, and its members."""
    db = sqlite3.connect(data_dir / "farm.db")
    try:
        docs = [orjson.loads(r[0]) for r in db.execute("SELECT doc FROM incidents")]
        members = {}
        for incident, fp in db.execute("SELECT incident_id, fingerprint FROM incident_alerts"):
            members.setdefault(incident, set()).add(fp)
    finally:
        db.close()
    return {(d["rule_fingerprint"], d["status"], d["alerts_count"], d["is_visible"],
             bool(d["same_incident_in_the_past_id"]), d["name"],
             frozenset(members.get(d["id"], ()))) for d in docs}


def run_storm(tmp_path, redis, redis_url, name: str, victim: str | None) -> set[tuple]:
    data = tmp_path / name / "data"
    rules = tmp_path / name / "rules.toml"
    rules.parent.mkdir()
    rules.write_text(STORM_RULES)
    config = write_config(tmp_path / name / "farm.toml", data, redis_url,
                          extra=f'ring_mb = 1\n[correlation]\nrules = "{rules}"\n')
    redis.flushdb()
    sent = 0
    with FarmProcess(config, workers=2) as farm:
        for wave, resolving in enumerate(WAVES):
            batches = storm_wave(wave, resolving)
            for raw in batches:
                redis.lpush("farm:q:normal", raw)
            sent += len(batches) * PER_BATCH
            if victim and wave == 1:
                target = sent - len(batches) * PER_BATCH // 2
                deadline = time.monotonic() + 120
                while farm.status()["counters"]["alerts_received"] < target:
                    assert time.monotonic() < deadline, "the farm never got busy"
                    time.sleep(0.01)
                os.kill(farm.children()[victim], signal.SIGKILL)
            farm.wait_drained(expected_received=sent, timeout=240)
        counters = farm.status()["counters"]
    assert counters["alerts_received"] == sent
    return stored_incidents(data)


@pytest.mark.parametrize("victim", ["worker-0", "indexer"])
def test_a_crash_in_an_incident_storm_gives_the_incidents_of_a_crash_free_run(
        tmp_path, redis, redis_url, victim):
    calm = run_storm(tmp_path, redis, redis_url, "calm", None)
    crashed = run_storm(tmp_path, redis, redis_url, "crashed", victim)
    assert crashed == calm
    # The storm's shape: one incident per host, a second for hosts that resolved and fired
    # again (linked to the first), every member once; resolved when all its alerts are.
    assert len(calm) == HOSTS + len(WAVES[1])
    assert sum(1 for i in calm if i[4]) == len(WAVES[1])
    assert all(len(members) == PER_HOST for *_, members in calm)
    resolved = [i for i in calm if i[1] == "resolved"]
    assert len(resolved) == len(WAVES[1]) + len(WAVES[2])


# -- the CLI -------------------------------------------------------------------------------

def farm_cli(config, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "farm.cli", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=120)


REVIEW_RULE = """
[[rule]]
name = "review"
condition = 'labels.kind == "review"'
require_approve = true
"""


def test_incidents_list_show_resolve_confirm_acknowledge_and_search_by_incident(
        tmp_path, redis, redis_url):
    rules = tmp_path / "rules.toml"
    rules.write_text(STORM_RULES.replace("threshold = 5", "threshold = 1") + REVIEW_RULE)
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url,
                          extra=f'[correlation]\nrules = "{rules}"\n')
    with FarmProcess(config, workers=1) as farm:
        redis.lpush("farm:q:normal", encode_batch(
            [alert("x1", labels={"kind": "storm", "host": "db1"}),
             alert("x2", labels={"kind": "storm", "host": "db1"}),
             alert("y1", labels={"kind": "review"})], "keep"))
        farm.wait_drained(expected_received=3)
        listed = farm_cli(config, "incidents", "list", "--json")
        [incident] = json.loads(listed.stdout)
        assert incident["name"] == "Storm on db1" and incident["status"] == "firing"
        shown = farm_cli(config, "incidents", "show", incident["id"])
        assert "x1" in shown.stdout and "x2" in shown.stdout
        found = farm_cli(config, "search", "--incident", incident["id"], "--json")
        assert {a["fingerprint"] for a in json.loads(found.stdout)} == {"x1", "x2"}
        done = farm_cli(config, "incidents", "resolve", incident["id"])
        assert done.returncode == 0, done.stderr
        [after] = json.loads(farm_cli(config, "incidents", "list", "--json").stdout)
        assert after["status"] == "resolved"
        missing = farm_cli(config, "incidents", "resolve", "no-such-id")
        assert missing.returncode == 1
        assert missing.stderr.count("\n") == 1 and "no incident no-such-id" in missing.stderr
        # A candidate (require_approve) shows only with --all until it is confirmed.
        every = json.loads(farm_cli(config, "incidents", "list", "--all", "--json").stdout)
        [candidate] = [i for i in every if i["rule"] == "review"]
        assert candidate["is_candidate"] and not candidate["is_visible"]
        done = farm_cli(config, "incidents", "confirm", candidate["id"])
        assert done.returncode == 0 and "confirmed: it is visible now" in done.stdout
        listed = json.loads(farm_cli(config, "incidents", "list", "--json").stdout)
        [confirmed] = [i for i in listed if i["id"] == candidate["id"]]
        assert confirmed["is_visible"] and confirmed["is_candidate"]
        again = farm_cli(config, "incidents", "confirm", candidate["id"])
        assert again.returncode == 0 and "was already confirmed" in again.stdout
        refused = farm_cli(config, "incidents", "confirm", incident["id"])
        assert refused.returncode == 1 and refused.stderr.count("\n") == 1
        assert "is not a candidate" in refused.stderr
        # Acknowledged: still open; a resolved incident cannot be.
        done = farm_cli(config, "incidents", "acknowledge", candidate["id"])
        assert done.returncode == 0 and "acknowledged" in done.stdout
        acked = json.loads(farm_cli(config, "incidents", "list", "--status", "acknowledged",
                                    "--json").stdout)
        assert [i["id"] for i in acked] == [candidate["id"]]
        refused = farm_cli(config, "incidents", "acknowledge", incident["id"])
        assert refused.returncode == 1 and "is resolved" in refused.stderr
