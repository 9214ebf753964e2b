"""Nothing vanishes from the account, whatever a batch holds.

Every event ends as stored alerts, full duplicates, dead letters, or one empty event (well
formed, but it holds no alert), so that after the ack

    alerts_received = alerts_indexed + alerts_duplicate + alerts_dead + events_empty

exactly. The batches go through the real pipeline and the worker's real ack (the Lua script
that counts) on a real Redis; the property tests feed arbitrary JSON-like events to every
provider.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import msgpack
import pytest
import redis as redis_lib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from farm import queue
from farm.pipeline import Outcome, Pipeline, unpack_record
from farm.redis_keys import Keys
from farm.wire import PROVIDERS, encode_batch
from tests.support.pipelines import PREFIX, dead_letters, history_rows, make_pipeline

KEYS = Keys(PREFIX)
SETTLED = ("alerts_indexed", "alerts_duplicate", "alerts_dead", "alerts_maintenance",
           "events_empty")
SAMPLES = Path(__file__).parent / "providers"
_batch_ids = itertools.count()


class Worker:
    """A worker's bookkeeping without its ring: take one batch, process it, ack it."""

    def __init__(self, redis, pipeline: Pipeline):
        self.redis = redis
        self.pipeline = pipeline
        self.queue = queue.WorkQueue(redis, KEYS, "account", 600)
        self.queue.claim()

    def run(self, raw: bytes) -> Outcome:
        self.redis.lpush(KEYS.queue("normal"), raw)
        [(shard, taken)] = self.queue.take(0)
        outcome = self.pipeline.process(taken)
        memo_keys = [KEYS.decided(m) for m in outcome.memo_ids]
        one = queue.ShardAck(1, outcome.counts, outcome.dead_letters, memo_keys)
        assert self.queue.ack({shard: one}) == []
        return outcome


def stats(redis) -> dict[str, int]:
    counted = queue.read_stats(redis, KEYS)
    counted.setdefault("events_empty", 0)
    return counted


def growth(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after[name] - before[name] for name in after}


def assert_balanced(grown: dict[str, int]) -> None:
    settled = sum(grown[name] for name in SETTLED)
    assert grown["alerts_received"] == settled, grown


def send(redis, provider: str, events: list) -> tuple[Outcome, dict[str, int]]:
    """One batch through a fresh worker; its growth of the counters."""
    worker = Worker(redis, make_pipeline(redis))
    before = stats(redis)
    outcome = worker.run(encode_batch(events, provider, batch_id=f"acct{next(_batch_ids)}",
                                      sent_at=1_741_076_400.0))
    return outcome, growth(before, stats(redis))


# -- the shapes that used to vanish ---------------------------------------------------------

@pytest.mark.parametrize("provider, events, reason", [
    ("keep", [[[[]]]], "BadEvent: a Keep alert must be a map, got list"),
    ("keep", [[{"name": "fine"}, [{"name": "nested"}]]],
     "BadEvent: a Keep alert must be a map, got list"),
    ("grafana", [{}], "BadEvent: a Grafana notification holds 'alerts' (unified alerting) or "
                      "'evalMatches' (legacy alerting), this one neither"),
    ("grafana", [{"title": "t", "alerts": None}], "BadEvent: 'alerts' must be a list"),
    ("grafana", [{"title": "t", "alerts": 0}], "BadEvent: 'alerts' must be a list"),
])
def test_a_malformed_event_is_dead_lettered_with_its_reason(redis, provider, events, reason):
    outcome, grown = send(redis, provider, events)
    [letter] = dead_letters(outcome)
    assert (letter["stage"], letter["payload"]) == ("normalize", events[0])
    assert letter["reason"].startswith(reason)
    assert grown["alerts_received"] == 1 and grown["alerts_dead"] == 1
    assert_balanced(grown)


@pytest.mark.parametrize("provider, events", [
    ("keep", [[]]),
    ("grafana", [{"title": "Nothing firing", "alerts": []}]),
    ("prometheus", [{"version": "4", "status": "resolved", "alerts": []}]),
])
def test_an_event_that_holds_no_alert_counts_as_empty(redis, provider, events):
    outcome, grown = send(redis, provider, events)
    assert outcome.dead_letters == [] and history_rows(outcome) == []
    assert grown["alerts_received"] == 1 and grown["events_empty"] == 1
    assert_balanced(grown)


def test_empty_and_dead_events_count_beside_the_stored_ones(redis):
    events = [{"name": "A"}, [], [[]], [{"name": "B"}, {"name": "C"}], {"name": "A"}]
    outcome, grown = send(redis, "keep", events)
    assert [row[6] for row in history_rows(outcome)] == ["A", "B", "C"]
    assert grown == {**grown, "alerts_received": 6, "alerts_indexed": 3, "alerts_duplicate": 1,
                     "alerts_dead": 1, "events_empty": 1, "batches_received": 1}


@pytest.mark.parametrize("changed, reason", [
    ({"v": 1.0}, "wire version 1.0 is not supported (this farm reads the integer 1)"),
    ({"v": True}, "wire version True is not supported (this farm reads the integer 1)"),
    ({"id": "x" * 100_000}, "bad batch id 'xxxxx"),
    ({"id": "job 7"}, "bad batch id 'job 7': 'id' must be 1 to 128 characters"),
])
def test_a_batch_with_a_bad_envelope_is_dead_lettered_whole(redis, changed, reason):
    raw = msgpack.packb({"v": 1, "id": "env1", "provider": "keep", "sent_at": 1_741_076_400.0,
                         "events": [{"name": "DiskFull"}], **changed})
    worker = Worker(redis, make_pipeline(redis))
    before = stats(redis)
    outcome = worker.run(raw)
    grown = growth(before, stats(redis))
    [letter] = dead_letters(outcome)
    assert (letter["stage"], letter["payload"]) == ("decode", raw)
    assert letter["reason"].startswith(reason) and len(letter["reason"]) < 200
    assert redis.lrange(KEYS.dlq, 0, -1) == outcome.dead_letters
    assert history_rows(outcome) == []
    assert (grown["batches_received"], grown["batches_dead"], grown["alerts_received"]) == (1, 1, 0)
    assert_balanced(grown)


# -- any input --------------------------------------------------------------------------------

# Fields the normalizers read, so that wrong types reach them and not only unknown keys.
KNOWN_FIELDS = ("alerts", "labels", "annotations", "status", "state", "fingerprint", "scopes",
                "tags", "lastReceived", "last_updated", "name", "title", "id", "severity",
                "source", "evalMatches", "ruleId", "ruleName", "externalURL", "generatorURL",
                "imageURL", "values", "body", "message", "url", "alertname", "service",
                "hostName", "triggerId", "update_action", "description_format", "assignees",
                "deleted", "dismissed", "dismissUntil", "alert_transition", "monitor_id")
SCALARS = (st.none() | st.booleans() | st.integers(-(2 ** 63), 2 ** 64 - 1)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
           | st.binary(max_size=6))
MAP_KEYS = st.sampled_from(KNOWN_FIELDS) | st.text(max_size=8) | st.integers(-3, 3)
JSON_LIKE = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(MAP_KEYS, inner, max_size=5),
    max_leaves=16)
# A map of known fields with any values: the shape of an alert, with wrong types in it.
SHAPED = st.dictionaries(st.sampled_from(KNOWN_FIELDS), JSON_LIKE, max_size=6)


def samples(provider: str) -> list:
    """The well-formed events the provider tests read, so some alerts are stored and repeated."""
    return [json.loads(path.read_text()) for path in sorted((SAMPLES / provider).glob("*.json"))
            if not path.name.endswith(".expected.json")]


def events_for(provider: str) -> st.SearchStrategy[list]:
    alert = SHAPED | JSON_LIKE
    nested = st.builds(lambda event, alerts: {**event, "alerts": alerts}, SHAPED,
                       st.lists(alert, max_size=4) | JSON_LIKE)
    event = (st.sampled_from(samples(provider)) | JSON_LIKE | SHAPED | nested
             | st.lists(alert, max_size=3))
    return st.lists(event, max_size=8)


@pytest.fixture(scope="module")
def shared_redis(redis_url):
    """One client for every example: the counters are read as growth, so nothing is flushed and
    later examples meet the fingerprints of earlier ones."""
    client = redis_lib.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="module")
def worker(shared_redis):
    # Small chunks and records, so that chunking, splitting and store letters happen too.
    pipeline = make_pipeline(shared_redis, workers={"batch_max": 3})
    pipeline.max_record_bytes = 4096
    return Worker(shared_redis, pipeline)


def check_batch(redis, worker: Worker, raw: bytes, events: object) -> None:
    before = stats(redis)
    outcome = worker.run(raw)  # raises if any exception escapes the pipeline
    grown = growth(before, stats(redis))
    assert_balanced(grown)
    assert grown["batches_received"] == 1
    if grown["batches_dead"]:
        assert len(outcome.dead_letters) == 1
        return
    assert grown["alerts_received"] >= len(events)  # every event counts at least once
    assert grown["alerts_dead"] == len(outcome.dead_letters)
    assert grown["alerts_indexed"] == len(history_rows(outcome))
    handed = sum(unpack_record(record)[1] for record in outcome.records)
    assert handed == grown["alerts_indexed"] + grown["alerts_duplicate"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_account_balances_for_any_events(shared_redis, worker, provider):
    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(events=events_for(provider))
    def balances(events: list) -> None:
        raw = encode_batch(events, provider, batch_id=f"prop{next(_batch_ids)}",
                           sent_at=1_741_076_400.0)
        check_batch(shared_redis, worker, raw, events)

    balances()


ENVELOPE_VALUES = {
    "v": st.sampled_from([1, 1.0, True, 2, "1", None]) | JSON_LIKE,
    "id": st.text(max_size=140) | st.sampled_from(["", "a" * 129, "x" * 100_000]) | JSON_LIKE,
    "tenant": st.sampled_from(["default", "acme", "a:b", ""]) | JSON_LIKE,
    "provider": st.sampled_from(PROVIDERS) | JSON_LIKE,
    "sent_at": st.floats() | st.integers(-(2 ** 63), 2 ** 63) | JSON_LIKE,
    "events": st.lists(JSON_LIKE, max_size=4) | JSON_LIKE,
    "provider_id": JSON_LIKE,
    "fingerprint": JSON_LIKE,
}


VALID_ENVELOPE = st.fixed_dictionaries({
    "v": st.just(1), "id": st.uuids().map(lambda u: u.hex), "provider": st.sampled_from(PROVIDERS),
    "sent_at": st.just(1_741_076_400.0), "events": st.just([])})
# A valid envelope with any of its keys replaced, or any map, or anything at all.
ENVELOPES = (st.builds(lambda valid, replaced: {**valid, **replaced}, VALID_ENVELOPE,
                       st.fixed_dictionaries({}, optional=ENVELOPE_VALUES))
             | st.dictionaries(MAP_KEYS, JSON_LIKE) | JSON_LIKE)


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(envelope=ENVELOPES)
def test_the_account_balances_for_any_envelope(shared_redis, worker, envelope):
    events = envelope.get("events") if isinstance(envelope, dict) else None
    check_batch(shared_redis, worker, msgpack.packb(envelope),
                events if isinstance(events, list) else [])
