"""Deduplication decisions through the real pipeline and a real Redis
(docs/keep-compatibility.md#deduplication).

n = new, p = partial (a new version of a known fingerprint), f = full duplicate (dropped from
history). Each batch's decisions are read back from the memo the dedup script writes.
"""

from __future__ import annotations

import copy

import msgpack
import orjson
import pytest

from farm.redis_keys import Keys
from tests.support.pipelines import PREFIX, Run, history_rows, make_pipeline


def webhook(status: str = "firing", summary: str = "Disk on db-07 above 90%",
            starts: str = "2025-03-04T08:15:30.123Z", ends: str = "0001-01-01T00:00:00Z",
            fingerprint: str = "a1b2c3d4e5f60718", instance: str = "db-07:9100") -> dict:
    return {"version": "4", "status": status, "receiver": "farm", "alerts": [{
        "status": status,
        "labels": {"alertname": "DiskAlmostFull", "instance": instance, "severity": "warning"},
        "annotations": {"summary": summary},
        "startsAt": starts, "endsAt": ends,
        "generatorURL": "http://prom:9090/graph", "fingerprint": fingerprint}]}


@pytest.fixture
def run(redis):
    return Run(redis, make_pipeline(redis))


def test_first_repeat_changed_resolved_and_back(run):
    assert run.send([webhook()]) == "n"
    assert run.send([webhook()]) == "f"          # same content, later lastReceived
    assert run.send([webhook(summary="Disk on db-07 above 95%")]) == "p"
    assert run.send([webhook(summary="Disk on db-07 above 95%")]) == "f"
    resolved = webhook("resolved", "Disk on db-07 above 95%", ends="2025-03-04T09:00:00Z")
    assert run.send([resolved]) == "p"
    assert run.send([resolved]) == "f"
    # The very first notification again: it differs from the last stored version (resolved).
    assert run.send([webhook()]) == "p"
    assert run.send([webhook()]) == "f"
    # A new firing episode has a new startsAt, so a new version.
    assert run.send([webhook(starts="2025-03-04T10:00:00Z")]) == "p"


def test_full_duplicates_never_reach_history(run):
    run.send([webhook()])
    assert len(history_rows(run.last)) == 1
    run.send([webhook(), webhook()])
    assert history_rows(run.last) == []
    assert run.last.decisions == {"n": 0, "p": 0, "f": 2}
    assert run.last.counts["alerts_duplicate"] == 2
    assert run.last.counts["alerts_indexed"] == 0


def test_a_full_duplicate_renews_the_dedup_window(redis):
    """The window slides: an alert re-sent within it keeps being a duplicate however long it
    fires, as Keep's does."""
    run = Run(redis, make_pipeline(redis, dedup={"ttl_seconds": 600}))
    assert run.send([webhook()]) == "n"
    [key] = redis.keys(f"{PREFIX}*dedup*")
    redis.expire(key, 5)  # as if most of the window had passed
    assert run.send([webhook()]) == "f"
    assert redis.ttl(key) > 500


def test_identical_alerts_in_one_batch_are_deduplicated(run):
    assert run.send([webhook(), webhook(), webhook(summary="x"), webhook(summary="x")]) == "nfpf"
    assert [row[0].rsplit(":", 1)[1] for row in history_rows(run.last)] == ["0", "2"]


def test_within_a_batch_across_chunks(redis):
    run = Run(redis, make_pipeline(redis, workers={"batch_max": 2}))
    events = [webhook(), webhook(), webhook(summary="x"), webhook(), webhook()]
    assert run.send(events) == "nfppf"
    assert len(run.last.records) == 3


def test_redelivered_batch_replays_its_decisions(run):
    first = run.batch([webhook(), webhook()])
    assert run.process(first) == "nf"
    later = run.batch([webhook(summary="changed")])
    assert run.process(later) == "p"
    # Redelivered while its memo exists (not yet acked): the same decisions, the same rows.
    rows = history_rows(run.pipeline.process(first))
    assert run.process(first) == "nf"
    assert [r[:7] for r in rows] == [r[:7] for r in history_rows(run.last)]


def test_redelivered_batch_without_memo_recognises_itself(redis, run):
    raw = run.batch([webhook(), webhook()])
    assert run.process(raw) == "nf"
    redis.delete(*[Keys(PREFIX).decided(m) for m in run.last.memo_ids])  # acked, memo gone
    assert run.process(raw) == "nf"  # the stored hash was set by this very event: still new


def test_a_redelivery_cut_into_other_chunks_replays_its_decisions(redis):
    """[workers] batch_max changed between two deliveries of one batch (a restart)."""
    first = Run(redis, make_pipeline(redis, workers={"batch_max": 2}))
    raw = first.batch([webhook(), webhook(), webhook(summary="x"), webhook(), webhook()])
    assert first.process(raw) == "nfppf"
    again = Run(redis, make_pipeline(redis, workers={"batch_max": 3}))
    assert again.process(raw) == "nfppf"
    assert again.last.decisions == {"n": 1, "p": 2, "f": 2}
    assert [r[:7] for r in history_rows(again.last)] == [r[:7] for r in history_rows(first.last)]


def test_tenants_are_separate(run):
    assert run.send([webhook()], tenant="acme") == "n"
    assert run.send([webhook()], tenant="globex") == "n"
    assert run.send([webhook()], tenant="acme") == "f"


def test_default_ignore_fields_from_config(redis):
    # The summary is also the description here (no annotations.description).
    ignore = ["annotations.summary", "description"]
    run = Run(redis, make_pipeline(redis, dedup={"ignore_fields": ignore}))
    assert run.send([webhook()]) == "n"
    assert run.send([webhook(summary="other text")]) == "f"
    assert run.send([webhook(instance="db-08:9100")]) == "p"


def test_a_missing_nested_ignore_field_is_not_an_error(redis):
    run = Run(redis, make_pipeline(redis, dedup={"ignore_fields": ["labels.nope.deeper",
                                                                   "nothing"]}))
    assert run.send([webhook()]) == "n"
    assert run.send([webhook()]) == "f"


def test_rule_ignore_fields_apply_to_their_tenant_only(redis):
    rule = {"provider": "prometheus", "tenant": "acme",
            "ignore_fields": ["startsAt", "payload.startsAt"]}
    run = Run(redis, make_pipeline(redis, dedup={"rules": [rule]}))
    for tenant, refire in (("acme", "f"), ("default", "p")):
        assert run.send([webhook()], tenant=tenant) == "n"
        assert run.send([webhook(starts="2025-03-04T11:00:00Z")], tenant=tenant) == refire


def test_last_received_is_always_ignored(redis):
    """Keep's quirk: a full rule whose ignore_fields lack lastReceived never finds a full
    duplicate. farm always leaves lastReceived out."""
    rule = {"provider": "keep", "ignore_fields": ["message"]}
    run = Run(redis, make_pipeline(redis, dedup={"rules": [rule]}))
    alert = {"id": "a1", "name": "Backup late", "lastReceived": "2025-03-04T08:00:00Z"}
    assert run.send([alert], provider="keep") == "n"
    later = dict(alert, lastReceived="2025-03-04T09:00:00Z", message="again")
    assert run.send([later], provider="keep") == "f"


def test_partial_rule_ignores_only_last_received(redis):
    rule = {"provider": "keep", "full_deduplication": False}
    run = Run(redis, make_pipeline(redis, dedup={"rules": [rule]}))
    alert = {"id": "a1", "name": "Backup late", "message": "one"}
    assert run.send([alert], provider="keep") == "n"
    assert run.send([alert], provider="keep") == "f"  # Keep drops full duplicates here too
    assert run.send([dict(alert, message="two")], provider="keep") == "p"


def test_generic_keep_alerts_without_id_deduplicate(run):
    """Keep gives each a random uuid, so they never would; farm uses the name."""
    alert = {"name": "Nightly backup missing", "severity": "warning"}
    assert run.send([alert], provider="keep") == "n"
    assert run.send([copy.deepcopy(alert)], provider="keep") == "f"


def test_fingerprint_rule_applies_to_the_keep_provider(redis):
    """keephq/keep#6793: Keep ignores a 'keep' rule's fingerprint_fields on /alerts/event."""
    rule = {"provider": "keep", "fingerprint_fields": ["labels.host"]}
    run = Run(redis, make_pipeline(redis, dedup={"rules": [rule]}))
    a = {"id": "1", "name": "CPU high", "labels": {"host": "web-1"}}
    b = {"id": "2", "name": "Memory high", "labels": {"host": "web-1"}}
    c = {"id": "3", "name": "CPU high", "labels": {"host": "web-2"}}
    assert run.send([a, b, c], provider="keep") == "npn"


def test_decisions_are_counted_per_provider(run):
    run.send([webhook(), webhook(), webhook(summary="x")])
    assert (run.last.provider, run.last.decisions) == ("prometheus", {"n": 1, "p": 1, "f": 1})
    run.send([{"name": "x"}, {"name": "x"}], provider="keep")
    assert (run.last.provider, run.last.decisions) == ("keep", {"n": 1, "p": 0, "f": 1})


def test_a_bad_event_is_dead_lettered_alone(run):
    decisions = run.send([webhook(), {"alerts": "not a list"}, webhook(summary="x")])
    assert decisions == "np"
    assert len(run.last.dead_letters) == 1
    assert run.last.counts["alerts_dead"] == 1
    assert run.last.counts["alerts_received"] == 3


def test_envelope_fingerprint_overrides_every_alert(run):
    """Keep's `fingerprint` query parameter: one fingerprint for every alert of the request."""
    raw = msgpack.unpackb(run.batch([webhook(), webhook(instance="other:1")]))
    raw.update(fingerprint="forced", provider_id="am-eu")
    assert run.process(msgpack.packb(raw)) == "np"
    [doc, _] = [orjson.loads(row[-1]) for row in history_rows(run.last)]
    assert (doc["fingerprint"], doc["providerId"]) == ("forced", "am-eu")
