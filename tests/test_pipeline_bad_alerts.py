"""What no store can take costs only itself, through the real pipeline and a real Redis.

An event whose alerts cannot be encoded (a map key that is not a string, nesting deeper than
orjson's 254 levels) is dead-lettered alone before any dedup decision, so Redis stores nothing
for it. A chunk too big for a worker's ring record is split into records that fit; an alert too
big by itself is dead-lettered alone, and the digest it stored is dropped again.
"""

from __future__ import annotations

import orjson

from farm import config
from farm.pipeline import Pipeline
from farm.redis_keys import Keys
from farm.wire import encode_batch
from tests.support.pipelines import PREFIX, Run, dead_letters, history_rows, make_pipeline


def nested(depth: int) -> object:
    value: object = "bottom"
    for _ in range(depth):
        value = {"down": value}
    return value


def dedup_keys(redis) -> list[bytes]:
    return redis.keys(f"{PREFIX}:dedup:*")


def test_an_event_no_store_can_encode_is_dead_lettered_before_any_decision(redis):
    run = Run(redis, make_pipeline(redis))
    events = [{"name": "ok"}, {"name": "int key", "extra": {1: "x"}},
              {"name": "300 deep", "extra": nested(300)},
              {"name": "1000 deep", "extra": nested(1000)}, {"name": "ok too"}]
    assert run.send(events, provider="keep") == "nn"
    reasons = [(letter["stage"], letter["payload"]["name"], letter["reason"])
               for letter in dead_letters(run.last)]
    assert reasons == [("normalize", "int key", "TypeError: Dict key must be str"),
                       ("normalize", "300 deep", "TypeError: Recursion limit reached"),
                       ("normalize", "1000 deep", "TypeError: Recursion limit reached")]
    assert len(dedup_keys(redis)) == 2  # nothing was decided, so nothing stored, for the others
    assert [row[6] for row in history_rows(run.last)] == ["ok", "ok too"]
    assert run.last.counts == {"alerts_received": 5, "alerts_indexed": 2,
                               "alerts_duplicate": 0, "alerts_dead": 3,
                               "alerts_maintenance": 0, "events_empty": 0,
                               "batches_received": 1}


def test_a_field_left_out_of_the_digest_is_still_checked(redis):
    run = Run(redis, make_pipeline(redis, dedup={"ignore_fields": ["extra", "labels.deep"]}))
    events = [{"name": "top", "extra": {None: 1}},
              {"name": "nested", "labels": {"deep": [{b"bytes key": 1}]}}, {"name": "ok"}]
    assert run.send(events, provider="keep") == "n"
    assert [letter["payload"]["name"] for letter in dead_letters(run.last)] == ["top", "nested"]
    assert len(dedup_keys(redis)) == 1


def test_a_zabbix_tag_item_without_a_string_tag_is_left_out(redis):
    run = Run(redis, make_pipeline(redis))
    event = {"name": "Disk space low", "service": "db-03",
             "tags": '[{"value": "no tag"}, {"tag": 7, "value": "x"}, {"tag": "team", '
                     '"value": "storage"}]'}
    assert run.send([event], provider="zabbix") == "n"
    assert run.last.dead_letters == []
    [row] = history_rows(run.last)
    assert '"tags":{"team":"storage"}' in row[-1]


def test_a_batch_with_an_impossible_sent_at_is_dead_lettered_whole(redis):
    pipeline = make_pipeline(redis)
    outcome = pipeline.process(encode_batch([{"name": "x"}], "keep", sent_at=1e20))
    [letter] = dead_letters(outcome)
    assert (letter["stage"], letter["reason"]) == ("decode", "'sent_at' 1e+20 is not a time "
                                                   "farm can store")
    assert outcome.counts["batches_dead"] == 1 and dedup_keys(redis) == []


def stored(outcome) -> list[tuple]:
    """History rows with their documents read, less the processing time."""
    return [(*row[:7], {k: v for k, v in orjson.loads(row[7]).items() if k != "processedAt"})
            for row in history_rows(outcome)]


def limited_pipeline(redis, max_record_bytes: int) -> Pipeline:
    cfg = config.load(None, env={})
    return Pipeline(cfg, redis, Keys(PREFIX), max_record_bytes=max_record_bytes)


def test_an_oversize_chunk_is_split_into_records_that_fit(redis):
    events = [{"name": f"alert {n}", "message": "m" * 500} for n in range(9)]
    whole = Run(redis, make_pipeline(redis))
    raw = whole.batch(events, provider="keep")
    whole.process(raw)
    [record] = whole.last.records
    redis.flushdb()

    split = Run(redis, limited_pipeline(redis, len(record) // 3))
    assert split.process(raw) == "n" * 9
    assert len(split.last.records) > 3
    assert all(len(r) <= len(record) // 3 for r in split.last.records)
    assert stored(split.last) == stored(whole.last)  # the same writes, cut up
    assert split.last.dead_letters == [] and split.last.counts["alerts_indexed"] == 9


def test_an_alert_too_big_for_a_record_by_itself_is_dead_lettered_alone(redis):
    run = Run(redis, limited_pipeline(redis, 4_000))
    huge = {"name": "huge", "message": "m" * 5_000}
    assert run.send([{"name": "a"}, huge, {"name": "b"}], provider="keep") == "nnn"
    [letter] = dead_letters(run.last)
    assert (letter["stage"], letter["payload"]["name"]) == ("store", "huge")
    assert "more than a ring record holds (4000)" in letter["reason"]
    assert [row[6] for row in history_rows(run.last)] == ["a", "b"]
    assert (run.last.counts["alerts_indexed"], run.last.counts["alerts_dead"]) == (2, 1)
    # Its digest was dropped: a re-send is new again, not a full duplicate of nothing stored.
    assert run.send([huge], provider="keep") == "n"
    assert run.send([{"name": "a"}], provider="keep") == "f"


def test_a_batch_whose_every_alert_is_dead_still_yields_one_record(redis):
    run = Run(redis, limited_pipeline(redis, 4_000))
    run.send([{"name": "huge", "message": "m" * 5_000}], provider="keep")
    assert len(run.last.records) == 1 and history_rows(run.last) == []
