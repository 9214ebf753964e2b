"""Outbound notifications (docs/operations.md#notifications): produced once in the atomic ack,
bounded, delivered by the supervised sender to a real HTTP receiver, retried, dead-lettered."""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import time

import msgpack
import pytest

from farm.config import load
from farm.deadletters import decode_letter, replay
from farm.notify.delivery import SIGNATURE_HEADER, signature
from farm.notify.entries import alert_entry, incident_entry, request_body
from farm.notify.outbox import OVERFLOW_REASON, NotifyKeys
from farm.queue import ShardAck, WorkQueue
from farm.redis_keys import Keys
from farm.wire import encode_batch
from tests.support.farms import FarmProcess, write_config
from tests.support.notify_receiver import Receiver
from tests.support.waiting import wait_until

KEYS = Keys("nt")
NOTIFY = NotifyKeys("nt")


def entries(n: int) -> list[bytes]:
    return [alert_entry({"eventId": f"b:{i}", "fingerprint": f"f{i}"}, "n") for i in range(n)]


def notify_letters(redis, prefix: str = "farm") -> list[dict]:
    letters = [decode_letter(raw) for raw in redis.lrange(f"{prefix}:dlq", 0, -1)]
    return [letter for letter in letters if letter.get("stage") == "notify"]


# -- the ack: once, bounded ----------------------------------------------------------------

def test_the_ack_pushes_notifications_with_the_batch(redis):
    q = WorkQueue(redis, KEYS, "w0", 10, notify_cap=100)
    q.claim()
    redis.lpush(q.inflight[0], b"batch")
    assert q.ack({0: ShardAck(1, {"alerts_received": 3}, [], [], entries(3))}) == []
    assert redis.llen(q.inflight[0]) == 0
    assert redis.lrange(NOTIFY.queue, 0, -1)[::-1] == entries(3)  # oldest on the right


def test_an_ack_that_lost_its_lease_notifies_nothing(redis):
    q = WorkQueue(redis, KEYS, "w0", 10, notify_cap=100)
    q.claim()
    redis.delete(q.heartbeat[0])  # a supervisor presumed us dead: the batch will be redelivered
    assert q.ack({0: ShardAck(1, {"alerts_received": 3}, [], [], entries(3))}) == [0]
    assert redis.llen(NOTIFY.queue) == 0


def test_past_the_cap_notifications_are_dead_lettered_and_counted_never_waited_for(redis):
    q = WorkQueue(redis, KEYS, "w0", 10, notify_cap=4)
    q.claim()
    redis.lpush(NOTIFY.queue, *entries(1))  # one already waits
    letter = msgpack.packb({"reason": "bad", "stage": "normalize", "payload": 1})
    assert q.ack({0: ShardAck(0, {}, [letter], ["nt:decided:x"], entries(5))}) == []
    assert redis.llen(NOTIFY.queue) == 4
    assert int(redis.get(NOTIFY.overflowed)) == 2
    [over] = notify_letters(redis, "nt")
    assert over["reason"] == OVERFLOW_REASON
    assert [e.encode() for e in over["payload"]] == entries(5)[3:]
    # The batch's own dead letter still comes after the notify group.
    assert any(decode_letter(raw)["reason"] == "bad" for raw in redis.lrange("nt:dlq", 0, -1))


def test_the_request_body_holds_alerts_and_incidents_apart():
    body = request_body([alert_entry({"eventId": "b:0"}, "p"),
                         incident_entry({"id": "inc-1", "status": "firing"}),
                         alert_entry({"eventId": "b:1"}, "n")])
    import json

    doc = json.loads(body)
    assert [a["eventId"] for a in doc["alerts"]] == ["b:0", "b:1"]
    assert [a["decision"] for a in doc["alerts"]] == ["partial", "new"]
    assert doc["incidents"] == [{"id": "inc-1", "status": "firing"}]


# -- a real farm and a real receiver -----------------------------------------------------------

def notify_config(tmp_path, redis_url, receiver: Receiver, **keys) -> object:
    settings = {"url": receiver.url, "linger_ms": 50, "backoff_max_seconds": 0.5, **keys}
    lines = [f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"'
             for k, v in settings.items()]
    return write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url,
                        extra="[notify]\n" + "\n".join(lines) + "\n")


def alertmanager_webhook(n: int, status: str) -> dict:
    """Alert number n of an Alertmanager webhook; n is its fingerprint."""
    return {"version": "4", "status": status, "alerts": [{
        "status": status, "fingerprint": f"{n:016x}",
        "labels": {"alertname": f"Alert{n}", "instance": f"host-{n % 17}:9100",
                   "severity": ["critical", "warning", "info"][n % 3]},
        "annotations": {"description": f"description {n}"}}]}


def push(redis, numbers: range, status: str = "firing") -> None:
    """One batch per 50 alerts; the same number is the same fingerprint."""
    numbers = list(numbers)
    for start in range(0, len(numbers), 50):
        events = [alertmanager_webhook(n, status) for n in numbers[start:start + 50]]
        redis.lpush("farm:q:normal", encode_batch(events, "prometheus"))


def stored_event_ids(tmp_path) -> set[str]:
    db = sqlite3.connect(tmp_path / "data" / "farm.db")
    try:
        return {row[0] for row in db.execute("SELECT eventId FROM alerts")}
    finally:
        db.close()




@pytest.mark.slow
def test_receiver_down_then_up_gets_every_stored_version_exactly_once(tmp_path, redis,
                                                                      redis_url):
    receiver = Receiver()  # its port is known, nothing listens on it yet
    config = notify_config(tmp_path, redis_url, receiver, retry_seconds=3600, batch_max=200)
    try:
        with FarmProcess(config, workers=2) as farm:
            push(redis, range(1000))                       # 1000 new
            push(redis, range(1000))                       # 1000 full duplicates
            push(redis, range(500), status="resolved")     # 500 new versions (partial)
            # The receiver is down, and the farm still indexes everything, exactly.
            doc = farm.wait_drained(expected_received=2500)
            assert doc["counters"]["alerts_indexed"] == 1500
            assert doc["counters"]["alerts_duplicate"] == 1000
            assert receiver.attempts == 0
            waiting = doc["notify"]["queue"] + redis.llen("farm:notify:inflight:test")
            assert waiting == 1500
            receiver.start()
            notified = receiver.wait_for_alerts(1500)
            wait_until(lambda: farm.status()["notify"]["queue"] == 0
                       and redis.llen("farm:notify:inflight:test") == 0, what="an empty outbox")
            code, metrics = farm.get("/metrics")
    finally:
        receiver.stop()
    ids = [a["eventId"] for a in notified]
    assert len(ids) == len(set(ids)) == 1500               # nothing twice
    assert set(ids) == stored_event_ids(tmp_path)           # every stored version, nothing else
    assert sum(a["decision"] == "partial" for a in notified) == 500
    resolved = [a for a in notified if a["status"] == "resolved"]
    assert len(resolved) == 500 and all(a["previousStatus"] == "firing" for a in resolved)
    assert notify_letters(redis) == []
    assert code == 200 and "farm_notify_deliveries_total" in metrics


@pytest.mark.slow
def test_a_receiver_answering_500_forever_gets_the_entries_dead_lettered_with_the_reason(
        tmp_path, redis, redis_url):
    receiver = Receiver(answer=500).start()
    config = notify_config(tmp_path, redis_url, receiver, retry_seconds=2)
    try:
        with FarmProcess(config, workers=1) as farm:
            push(redis, range(120))
            farm.wait_drained(expected_received=120)
            wait_until(lambda: sum(len(x["payload"]) for x in notify_letters(redis)) >= 120,
                       what="the notifications in the dead-letter list")
            wait_until(lambda: redis.llen("farm:notify:inflight:test") == 0, what="no inflight")
            _, metrics = farm.get("/metrics")
            letters = notify_letters(redis)
            # Once the receiver is fixed, `farm dlq replay` sends them again.
            receiver.answer = 200
            assert replay(redis, load(config, env={}), None) == (len(letters), 0)
            redelivered = receiver.wait_for_alerts(120)
    finally:
        receiver.stop()
    assert all("HTTP 500" in letter["reason"] and "gave up after" in letter["reason"]
               for letter in letters)
    ids = [entry_event_id(e) for letter in letters for e in letter["payload"]]
    assert sorted(ids) == sorted(stored_event_ids(tmp_path))
    assert sorted(a["eventId"] for a in redelivered) == sorted(ids)
    assert receiver.attempts > len(letters)                  # it did retry first
    assert "farm_notify_dead_lettered_total 120.0" in metrics
    assert 'farm_notify_failures_total{reason="500"}' in metrics


def entry_event_id(entry: str) -> str:
    import json

    assert entry[0] == "a"
    return json.loads(entry[1:])["eventId"]


@pytest.mark.slow
def test_a_slow_receiver_is_cut_by_the_timeout_retried_and_never_blocks_indexing(
        tmp_path, redis, redis_url):
    receiver = Receiver().start()
    receiver.slow, receiver.slow_seconds = 3, 5.0
    config = notify_config(tmp_path, redis_url, receiver, timeout_seconds=0.5,
                           retry_seconds=3600)
    try:
        with FarmProcess(config, workers=2) as farm:
            push(redis, range(600))
            doc = farm.wait_drained(expected_received=600)
            assert doc["counters"]["alerts_indexed"] == 600
            notified = receiver.wait_for_alerts(600)
            _, metrics = farm.get("/metrics")
    finally:
        receiver.stop()
    ids = [a["eventId"] for a in notified]
    assert len(ids) == len(set(ids)) and set(ids) == stored_event_ids(tmp_path)
    assert receiver.attempts >= len(receiver.accepted) + 3   # the slow ones were retried
    assert 'farm_notify_failures_total{reason="timeout"}' in metrics


@pytest.mark.slow
def test_a_full_queue_dead_letters_the_overflow_and_counts_it(tmp_path, redis, redis_url):
    receiver = Receiver()  # down for the whole test
    config = notify_config(tmp_path, redis_url, receiver, max_queue=100, batch_max=10,
                           retry_seconds=3600)
    with FarmProcess(config, workers=2) as farm:
        push(redis, range(500))
        doc = farm.wait_drained(expected_received=500)
        assert doc["counters"]["alerts_indexed"] == 500
        _, metrics = farm.get("/metrics")
        overflowed = farm.status()["notify"]["overflowed"]
    queued = redis.llen("farm:notify") + redis.llen("farm:notify:inflight:test")
    letters = notify_letters(redis)
    in_letters = sum(len(letter["payload"]) for letter in letters)
    assert queued <= 100 + 10
    assert overflowed == in_letters == 500 - queued > 0     # nothing vanished
    assert all(letter["reason"] == OVERFLOW_REASON for letter in letters)
    assert f"farm_notify_overflowed_total {float(overflowed)}" in metrics


@pytest.mark.slow
def test_requests_carry_the_configured_headers_and_a_signature_that_verifies(
        tmp_path, redis, redis_url):
    receiver = Receiver().start()
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url, extra=f"""
[notify]
url = "{receiver.url}"
secret = "s3cret"
linger_ms = 0
[notify.headers]
Authorization = "Bearer abc"
""")
    try:
        with FarmProcess(config, workers=1) as farm:
            push(redis, range(50))
            farm.wait_drained(expected_received=50)
            receiver.wait_for_alerts(50)
    finally:
        receiver.stop()
    assert receiver.accepted
    for request in receiver.accepted:
        sent = request["headers"][SIGNATURE_HEADER]
        expected = "sha256=" + hmac.new(b"s3cret", request["body"], hashlib.sha256).hexdigest()
        assert hmac.compare_digest(sent, expected)
        assert sent != signature("wrong", request["body"])
        assert request["headers"]["Authorization"] == "Bearer abc"
        assert request["headers"]["Content-Type"] == "application/json"


@pytest.mark.slow
def test_a_worker_killed_mid_run_still_notifies_each_stored_version_once(tmp_path, redis,
                                                                        redis_url):
    import os
    import signal

    receiver = Receiver().start()
    config = notify_config(tmp_path, redis_url, receiver, retry_seconds=3600)
    try:
        with FarmProcess(config, workers=2) as farm:
            push(redis, range(6000))
            wait_until(lambda: farm.status()["counters"]["alerts_received"] > 0,
                       what="the first ack")
            os.kill(farm.children()["worker-0"], signal.SIGKILL)  # its batches are redelivered
            push(redis, range(3000), status="resolved")
            # (In practice dozens of batches are redelivered here.)
            farm.wait_drained(expected_received=9000, timeout=240)
            stored = stored_event_ids(tmp_path)
            notified = receiver.wait_for_alerts(len(stored), timeout=240)
            wait_until(lambda: farm.status()["notify"]["queue"] == 0, what="an empty outbox")
            time.sleep(1)  # a duplicate, if there were one, would have time to arrive
            notified = receiver.alerts()
    finally:
        receiver.stop()
    ids = [a["eventId"] for a in notified]
    assert len(ids) == len(set(ids))
    assert set(ids) == stored


INCIDENT_RULES = """
[[rule]]
name = "per host"
condition = 'labels.kind == "storm"'
grouping_criteria = ["labels.host"]
timeframe = "1d"
resolve_on = "all"
"""


@pytest.mark.slow
def test_incident_changes_are_notified_beside_their_alerts(tmp_path, redis, redis_url):
    import json

    rules = tmp_path / "rules.toml"
    rules.write_text(INCIDENT_RULES)
    receiver = Receiver().start()
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url, extra=f"""
[notify]
url = "{receiver.url}"
linger_ms = 0
[correlation]
rules = "{rules}"
""")
    hosts = ["h1", "h2", "h3"]

    def versions(status: str) -> list[dict]:
        return [{"name": f"disk {host}.{n}", "fingerprint": f"{host}.{n}", "status": status,
                 "labels": {"kind": "storm", "host": host}} for host in hosts for n in (1, 2)]

    try:
        with FarmProcess(config, workers=1) as farm:
            redis.lpush("farm:q:normal", encode_batch(versions("firing"), "keep"))
            farm.wait_drained(expected_received=6)
            redis.lpush("farm:q:normal", encode_batch(versions("resolved"), "keep"))
            farm.wait_drained(expected_received=12)
            receiver.wait_for_alerts(12)
            with receiver.lock:
                snapshots = [i for r in receiver.accepted for i in r["doc"]["incidents"]]
    finally:
        receiver.stop()
    db = sqlite3.connect(tmp_path / "data" / "farm.db")
    stored = {d["id"]: d for d in (json.loads(row[0])
                                   for row in db.execute("SELECT doc FROM incidents"))}
    db.close()
    assert len(stored) == 3
    assert {s["id"] for s in snapshots} == set(stored)
    last = {s["id"]: s for s in snapshots}  # one worker: in the order they were decided
    assert all(last[i]["status"] == stored[i]["status"] == "resolved" for i in stored)
