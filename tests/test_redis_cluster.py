"""farm on a real Redis Cluster (3 masters, 3 replicas, started by the tests): every Lua script
and multi-key command farm runs must touch one hash slot, or the cluster (or redis-py's routing)
refuses it with CROSSSLOT and the test fails. From the key layout alone, through each atomic step
on its own, to a whole `farm start` under `farm-loadgen --verify` with a worker SIGKILLed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import msgpack
import pytest
from redis import exceptions as redis_errors
from redis.crc import key_slot

from farm import config as config_mod
from farm.correlation.decide import CHUNK_LUA
from farm.ingest.ratelimit import RateLimiter
from farm.maintenance.release import RELEASE
from farm.maintenance.sources import add_window, end_window, read_redis
from farm.pipeline import Pipeline
from farm.queue import (
    ShardAck,
    WorkQueue,
    dead_letter_count,
    depths,
    notify_depth,
    read_stats,
    recover,
)
from farm.redis_keys import DEDUP_BUCKETS, Keys
from farm.redisconn import (
    RedisUnavailable,
    Rider,
    Riders,
    connect,
    connect_async,
    parse_cluster_url,
    run_scripts,
    unlink_later,
)
from farm.wire import WIRE_VERSION, encode_batch
from tests.support.correlation_runs import CorrelationRun, alert
from tests.support.farms import FarmProcess, write_config
from tests.support.gateways import post
from tests.support.maintenance import events, stored
from tests.support.notify_receiver import Receiver
from tests.support.payloads import ALERTMANAGER
from tests.support.ports import free_port, wait_healthy
from tests.support.waiting import wait_until

SUPPORTED_MIX = "prometheus:3,grafana:1,datadog:1,zabbix:1,keep:1"


def slot(key: str) -> int:
    return key_slot(key.encode())


def test_a_cluster_url_is_read_exactly_and_a_bad_one_is_one_line():
    spec = parse_cluster_url("rediss+cluster://me:p%40ss@10.0.0.1:7000,[::1]:7001/")
    assert spec.nodes == (("10.0.0.1", 7000), ("::1", 7001))
    assert (spec.username, spec.password, spec.tls) == ("me", "p@ss", True)
    assert parse_cluster_url("redis+cluster://h:1").tls is False
    for bad in ("redis+cluster://", "redis+cluster://host", "redis+cluster://h:1,,h:2",
                "redis+cluster://h:99999"):
        with pytest.raises(RedisUnavailable) as caught:
            parse_cluster_url(bad)
        assert "\n" not in str(caught.value) and "host:port" in str(caught.value)
    with pytest.raises(RedisUnavailable) as caught:
        connect("redis+cluster://127.0.0.1:1")
    assert "\n" not in str(caught.value) and "cannot reach Redis" in str(caught.value)


def test_every_atomic_steps_keys_share_a_slot_and_spread_over_slots():
    keys = Keys("farm", shards=16, cluster=True)
    for shard in keys.all_shards():
        step = [keys.queue("critical", shard), keys.queue("normal", shard),
                keys.inflight("n.0", shard), keys.heartbeat("n.0", shard),
                keys.dead_letters(shard), keys.stat("alerts_received", shard),
                keys.stat("batches_redelivered", shard)]
        assert len({slot(k) for k in step}) == 1, step
        assert keys.of_inflight(keys.inflight("n.0", shard)) == ("n.0", shard)
    assert len({slot(keys.queue("normal", s)) for s in keys.all_shards()}) == 16
    fingerprints = [f"fp-{i}" for i in range(500)]
    assert {keys.bucket(fp) for fp in fingerprints} == set(range(DEDUP_BUCKETS))
    for fp in fingerprints[:50]:
        b = keys.bucket(fp)
        assert slot(keys.dedup("t", fp)) == slot(keys.decided("b1", b)) == \
            slot(keys.timeline("b1", b))
    # The correlation script names its keys from the prefix it is given (state.lua).
    p = keys.correlation_prefix("acme")
    built = [f"{p}:incnumber:acme", f"{p}:incident:abc", f"{p}:incfp:acme:fp",
             f"{p}:incgroup:acme:rule:group", keys.incidents_memo("b1", "acme")]
    assert ":incident:' .. id" in CHUNK_LUA and ":incnumber:' .. T" in CHUNK_LUA
    assert len({slot(k) for k in built}) == 1
    assert slot(keys.maintenance) == slot(keys.maintenance_version)
    # Single instance, one shard: the names farm always used.
    plain = Keys("farm")
    assert (plain.queue("normal"), plain.inflight("w"), plain.stat("alerts_dead"), plain.dlq,
            plain.dedup("t", "f"), plain.maintenance) == (
        "farm:q:normal", "farm:inflight:w", "farm:stats:alerts_dead", "farm:dlq",
        "farm:dedup:t:f", "farm:maintenance")


def test_take_ack_and_recovery_run_on_every_shard(redis_cluster_url):
    client = connect(redis_cluster_url)
    keys = Keys("q1", shards=4, cluster=True)
    for shard in keys.all_shards():
        client.lpush(keys.queue("normal", shard), f"n{shard}".encode())
        client.lpush(keys.queue("critical", shard), f"c{shard}".encode())
    q = WorkQueue(client, keys, "node.0", 10, notify_cap=100)
    q.claim()
    taken = [item for _ in range(4) for item in q.take(0)]
    assert sorted(taken) == sorted((s, f"{lane}{s}".encode()) for s in range(4)
                                   for lane in "cn")
    letter = msgpack.packb({"reason": "bad", "at": time.time()})
    acks = {0: ShardAck(2, {"alerts_received": 3, "alerts_indexed": 3}, [letter], [],
                        [b'{"n": 1}']),
            3: ShardAck(1, {"alerts_received": 1, "alerts_dead": 1})}
    assert q.ack(acks, refresh_all=True) == []
    assert read_stats(client, keys)["alerts_received"] == 4
    assert dead_letter_count(client, keys) == 1
    assert notify_depth(client, keys) == (1, 0)
    assert depths(client, keys) == {"critical": 0, "normal": 0, "inflight": 5}
    assert recover(client, keys, "node.0") == 0  # its leases are alive
    assert recover(client, keys, "node.0", force=True) == 5
    assert depths(client, keys) == {"critical": 5, "normal": 0, "inflight": 0}
    assert read_stats(client, keys)["batches_redelivered"] == 5
    q.release()
    client.close()


def on_two_nodes(client, prefix: str) -> tuple[list[str], list[str]]:
    """Keys (one per hash tag) served by one master, and keys served by another."""
    by_node: dict[str, list[str]] = {}
    for i in range(200):
        key = f"{prefix}:{{{i}}}:k"
        by_node.setdefault(client.get_node_from_key(key).name, []).append(key)
    first, second = list(by_node.values())[:2]
    return first, second


def test_riders_go_with_the_next_request_to_their_node_and_wait_otherwise(redis_cluster_url):
    """Acks and memo UNLINKs wait for a pipelined request that reaches their node (the next
    batch's dedup calls), run in it (a script the node lacks is loaded first), hand their
    replies back, and the ones no request reached go with flush()."""
    client = connect(redis_cluster_url)
    riders = Riders.of(client)
    here, there = on_two_nodes(client, "ride")
    for key in (here[1], there[1]):
        client.set(key, "memo")
    count = client.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1]) -- ride")
    replies: list = []
    riders.add(Rider(count, [here[0]], [5], replies.append))  # urgent: it has a reply to hand
    unlink_later(riders, [here[1], there[1]])
    assert riders.due()
    assert run_scripts(client, [(count, [here[2]], [1])]) == [1]  # one call, on `here`'s node
    assert replies == [5] and client.get(here[0]) == b"5"
    assert not client.exists(here[1]) and client.exists(there[1])
    assert len(riders.waiting) == 1 and not riders.due()  # an UNLINK may wait for a ride
    riders.flush(client, only_due=True)
    assert client.exists(there[1])
    riders.flush(client)
    assert not client.exists(there[1]) and riders.waiting == []
    riders.add(Rider(count, [here[3]], [1], replies.append))
    riders.drop_urgent()  # an ack under a lease given up never goes
    riders.flush(client)
    assert not client.exists(here[3]) and replies == [5]
    client.close()


def test_a_take_that_rides_takes_critical_first_and_the_shards_in_turn(redis_cluster_url):
    """The take a worker sends along with a batch's dedup requests keeps take()'s order: the
    shard whose turn it is, critical before normal; the turn passes only once it ran."""
    client = connect(redis_cluster_url)
    keys = Keys("ride2", shards=4, cluster=True)
    for shard in keys.all_shards():
        client.lpush(keys.queue("normal", shard), f"n{shard}".encode())
        client.lpush(keys.queue("critical", shard), f"c{shard}".encode())
    q = WorkQueue(client, keys, "node.0", 10)
    q.claim()
    riders = Riders.of(client)
    taken: list = []
    unsent = q.take_riders(lambda shard, raw: taken.append((shard, raw)))
    for rider in unsent:
        riders.add(rider)
    riders.discard(unsent)  # no request went its way: shard 0 keeps its turn
    assert riders.waiting == [] and taken == []
    noop = client.register_script("return 1")
    every_shards_node = [(noop, [keys.queue("normal", s)], []) for s in keys.all_shards()]
    for _ in range(3):  # as a batch's dedup requests, which reach every master
        for rider in q.take_riders(lambda shard, raw: taken.append((shard, raw))):
            riders.add(rider)
        run_scripts(client, every_shards_node)
    assert taken == [(s, f"{lane}{s}".encode()) for s in range(3) for lane in "cn"]
    assert q.take(0) == [(3, b"c3"), (3, b"n3")]  # take() goes on from the next turn
    assert depths(client, keys)["inflight"] == 8
    client.close()


def test_an_error_a_rider_meets_is_raised_by_the_request_it_rode(redis_cluster_url):
    client = connect(redis_cluster_url)
    riders = Riders.of(client)
    here, _ = on_two_nodes(client, "fail")
    client.set(here[0], "not a number")
    count = client.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    riders.add(Rider(count, [here[0]], [1], lambda reply: None))
    with pytest.raises(redis_errors.ResponseError):
        run_scripts(client, [(count, [here[1]], [1]), (count, [here[2]], [1])])
    assert client.get(here[1]) == b"1" and riders.waiting == []  # the calls themselves ran
    client.close()


def test_dedup_timeline_and_correlation_run_on_the_cluster(tmp_path, redis_cluster_url):
    client = connect(redis_cluster_url)
    keys = Keys("c1", shards=4, cluster=True)
    rules = ('[[rule]]\nname = "by host"\ncondition = \'labels.team == "dba"\'\n'
             'grouping_criteria = ["labels.host"]\ntimeframe = 600\n')
    run = CorrelationRun(tmp_path, client, rules, keys=keys,
                         extra="[workers]\nbatch_max = 7\n")
    try:
        alerts = [alert(f"fp{i}", labels={"team": "dba", "host": f"h{i % 2}"})
                  for i in range(60)]
        first = run.send(*alerts, batch_id="batch-a")
        assert first.decisions["n"] == 60
        # Redelivered (same batch id): the decisions and incidents replay from the memos of
        # every bucket, however the batch is chunked.
        again = run.send(*alerts, batch_id="batch-a", after=0)
        assert again.decisions == first.decisions
        assert first.correlation.opened == 2
        later = run.send(*alerts, batch_id="batch-b")
        assert later.decisions["f"] == 60
        changed = [alert(f"fp{i}", "resolved", labels={"team": "dba", "host": f"h{i % 2}"})
                   for i in range(60)]
        resolved = run.send(*changed, batch_id="batch-c")
        assert resolved.decisions["p"] == 60
        incidents = run.incidents()  # the replay counted no member twice
        assert len(incidents) == 2 and all(i["alerts_count"] == 30 for i in incidents)
        run.pipeline.dedup.forget("default", {"fingerprint": "fp0", "eventId": "nope"})
    finally:
        run.close()
        client.close()


def test_alerts_held_in_maintenance_are_released_on_the_cluster(tmp_path, redis_cluster_url):
    """The release batch's guarded dedup script runs per bucket, with each alert's expected
    eventId beside it: every held alert comes back once, and one stored again since is skipped."""
    (tmp_path / "windows.toml").write_text(
        '[[window]]\nname = "cache"\nstart = "2026-12-05T02:00:00Z"\n'
        'end = "2026-12-05T03:00:00Z"\ncondition = \'service == "cache"\'\n'
        'suppress = true\nrecover_previous_status = true\n')
    (tmp_path / "farm.toml").write_text('[maintenance]\nrules = "windows.toml"\n')
    client = connect(redis_cluster_url)
    pipeline = Pipeline(config_mod.load(tmp_path / "farm.toml", env={}), client,
                        Keys("r1", cluster=True))
    inside, after = 1_796_437_800.0, 1_796_437_800.0 + 3600
    try:
        held = stored(pipeline.process(encode_batch(events("h", ["cache"] * 12), "keep",
                                                    batch_id="h1", sent_at=inside)))
        assert {doc["status"] for doc in held.values()} == {"maintenance"}
        newer = {**events("h", ["cache"])[0], "status": "resolved"}  # the first one, again
        pipeline.process(encode_batch([newer], "keep", batch_id="n1", sent_at=after))
        docs = list(held.values())

        def release(batch_id: str) -> bytes:
            return msgpack.packb({"v": WIRE_VERSION, "id": batch_id, "tenant": "default",
                                  "provider": "keep", "sent_at": after + 1, "events": docs,
                                  "control": {RELEASE: [d["eventId"] for d in docs]}})

        out = pipeline.process(release("rel1"))
        again = stored(out)
        assert out.released == 11 and {d["status"] for d in again.values()} == {"firing"}
        assert held["h1:0"]["fingerprint"] not in {d["fingerprint"] for d in again.values()}
        assert pipeline.process(release("rel1")).released == 11  # redelivered: memo replays
        assert pipeline.process(release("rel2")).released == 0  # the next round, sent again
    finally:
        client.close()


def test_maintenance_and_rate_limit_run_on_the_cluster(redis_cluster_url):
    client = connect(redis_cluster_url)
    keys = Keys("m1", cluster=True)
    now = time.time()
    add_window(client, keys, {"name": "w1", "condition": "*", "start": "2026-12-05T02:00:00Z",
                              "duration": "4h"}, set(), now)
    version, windows, problems = read_redis(client, keys)
    assert int(version) == 1 and [w.name for w in windows] == ["w1"] and not problems
    end_window(client, keys, "w1", set(), now)
    client.close()

    async def admitted() -> int:
        limiter_client = connect_async(redis_cluster_url)
        try:
            limiter = RateLimiter(limiter_client, "m1", "10/s", 1.0, {})
            verdicts = await asyncio.gather(*[limiter.admit("acme", "keep") for _ in range(30)])
        finally:
            await limiter_client.aclose()
        return sum(v.allowed for v in verdicts)

    assert asyncio.run(admitted()) == 10


def test_a_farm_on_the_cluster_balances_through_a_killed_worker(tmp_path, redis_cluster_url):
    """A real farm on the cluster (16 shards) under farm-loadgen --verify; worker-0 is
    SIGKILLed mid-run, its inflight lists on every shard are requeued, and the account is exact:
    nothing lost, nothing stored twice, the counters (summed over the shards) add up."""
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_cluster_url,
                          prefix="e2e", extra="ring_mb = 1\n")
    with FarmProcess(config, workers=2) as farm:
        run = subprocess.Popen(
            [sys.executable, "-m", "loadgen.cli", "--config", str(config), "--rate", "1MB/s",
             "--duration", "6s", "--mix", SUPPORTED_MIX, "--verify", "--json", "--quiet",
             "--seed", "11", "--min-achieved", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: farm.status()["counters"]["alerts_received"] > 2000,
                   "the farm to be busy")
        os.kill(farm.children()["worker-0"], signal.SIGKILL)
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err + out
        doc = json.loads(out)
        status = farm.status()
    checked = doc["verify"]
    assert checked["missing"] == checked["unexpected"] == checked["dead_lettered"] == 0
    assert checked["counter_problems"] == []
    assert checked["farm_received_expected"] == checked["sent"] == doc["sent"]["alerts"]
    assert status["workers"][0]["restarts"] >= 1


def test_webhooks_through_a_gateway_on_the_cluster_reach_the_store(tmp_path, redis_cluster_url):
    """The gateway's pushes (async cluster client, shards in turn), its rate-limit script and
    its backlog gate (LLEN and MEMORY USAGE of every shard) on the cluster, with a correlation
    rule on; the ack pushes the stored versions onto its shard's notify list and the sender
    takes them from there."""
    port = free_port()
    receiver = Receiver().start()
    rules = tmp_path / "correlation.toml"
    rules.write_text('[[rule]]\nname = "all"\ncondition = \'status == "firing"\'\n'
                     'grouping_criteria = ["labels.instance"]\ntimeframe = 600\n')
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_cluster_url,
                          prefix="gw", extra=f"""
[ingest]
processes = 1
http = "127.0.0.1:{port}"
allow_anonymous = true
rate = "1000/s"
[correlation]
rules = "{rules}"
[notify]
url = "{receiver.url}"
linger_ms = 50
""")
    try:
        with FarmProcess(config, workers=2) as farm:
            url = f"http://{farm.ingest_http}"
            wait_healthy(url)
            for _ in range(20):
                response = post(f"{url}/alerts/event/prometheus", ALERTMANAGER, key=None)
                assert response.status_code == 202, response.text
            doc = farm.wait_drained(expected_received=20)
            notified = receiver.wait_for_alerts(doc["counters"]["alerts_indexed"])
    finally:
        receiver.stop()
    assert len({a["eventId"] for a in notified}) == len(notified) >= 1
    counters = doc["counters"]
    assert counters["alerts_received"] == 20 and counters["alerts_dead"] == 0
    assert counters["alerts_indexed"] + counters["alerts_duplicate"] == 20
    with sqlite3.connect(tmp_path / "data" / "farm.db") as db:
        assert db.execute("SELECT count(*) FROM incidents").fetchone()[0] >= 1
