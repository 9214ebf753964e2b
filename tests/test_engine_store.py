"""The Elasticsearch/OpenSearch store on a real engine node (tests/support/engine.py)."""

from __future__ import annotations

import uuid

import msgpack
import pytest

from farm.sinks.engine_client import history_index
from tests.support.engine_store import SENT_AT, EngineStore

pytestmark = pytest.mark.engine

DAY = history_index("x", SENT_AT).split("-alerts-")[1]


def alert(event_id: str, fp: str = "fp1", status: str = "firing",
          seen: str = "2026-09-21T10:00:00.000Z", description: object = "disk is full",
          severity: str = "warning") -> dict:
    return {"eventId": event_id, "id": "DiskFull", "fingerprint": fp, "name": "DiskFull",
            "status": status, "severity": severity, "lastReceived": seen,
            "description": description, "message": None, "tenant": "t1",
            "batchId": event_id.split(":")[0], "receivedAt": "2026-09-21T10:00:00.000Z",
            "labels": {"host": "db-1", f"k{uuid.uuid4().hex[:6]}": "unbounded"},
            "source": ["prometheus"], "providerType": "prometheus"}


@pytest.fixture
def store(engine_url):
    s = EngineStore(engine_url)
    yield s
    s.close()


def test_history_documents_have_event_ids_mappings_and_values(store):
    assert store.write([(alert("b:0"), "n"), (alert("b:1", fp="fp2", severity="critical"), "n"),
                        (alert("b:2"), "f")]) == []
    index = f"{store.prefix}-alerts-{DAY}"
    assert store.count(index) == 2  # the full duplicate stays out of history
    doc = store.get(index, "b:1")
    assert doc["eventId"] == "b:1" and doc["severity"] == "critical"
    assert doc["severityOrder"] == 5
    assert doc["labels"]["host"] == "db-1"
    mapping = store.engine.request("GET", f"/{index}/_mapping")[1][index]["mappings"]
    props = mapping["properties"]
    assert props["labels"]["type"] in ("flat_object", "flattened")
    assert props["eventId"]["type"] == "keyword" and props["lastReceived"]["type"] == "date"
    assert mapping["dynamic"] in ("false", False)
    assert "k" not in "".join(p for p in props if p.startswith("k"))  # labels did not explode
    hits = store.engine.request("POST", f"/{index}/_search", body={
        "query": {"term": {"labels.host": "db-1"}}})[1]["hits"]["total"]["value"]
    assert hits == 2


def test_a_redelivered_batch_creates_no_duplicate(store):
    items = [(alert("b:0"), "n"), (alert("b:1", fp="fp2"), "n")]
    store.write(items)
    store.write(items)
    assert store.count(f"{store.prefix}-alerts-{DAY}") == 2
    assert store.count(f"{store.prefix}-alerts-current") == 2


def test_current_state_holds_the_latest_version_and_duplicate_counts(store):
    store.write([(alert("a:0"), "n"), (alert("a:1", seen="2026-09-21T10:00:05.000Z"), "f")])
    assert store.current()["duplicates"] == 1
    store.write([(alert("b:0", seen="2026-09-21T10:01:00.000Z"), "f")], sent_at=SENT_AT + 60)
    doc = store.current()
    assert (doc["eventId"], doc["duplicates"], doc["lastReceived"]) == \
        ("a:0", 2, "2026-09-21T10:01:00.000Z")
    store.write([(alert("c:0", status="resolved", seen="2026-09-21T10:02:00.000Z"), "p")],
                sent_at=SENT_AT + 120)
    doc = store.current()
    assert (doc["eventId"], doc["status"], doc["duplicates"]) == ("c:0", "resolved", 0)
    store.write([(alert("a:0"), "n"), (alert("a:1"), "f")])  # batch a redelivered, older
    assert store.current()["eventId"] == "c:0"
    assert store.count(f"{store.prefix}-alerts-current") == 1


def test_duplicates_that_overtake_their_version_are_kept(store):
    store.write([(alert("d:0", seen="2026-09-21T10:00:07.000Z"), "f")], sent_at=SENT_AT + 1)
    assert store.current()["eventId"] == ""
    store.write([(alert("a:0"), "n")], sent_at=SENT_AT)
    doc = store.current()
    assert (doc["eventId"], doc["duplicates"], doc["lastReceived"]) == \
        ("a:0", 1, "2026-09-21T10:00:07.000Z")


def test_a_rejected_item_is_dead_lettered_while_its_siblings_commit(store):
    bad = alert("b:1", fp="fp2", description={"not": "text"})
    rejected = store.write([(alert("b:0"), "n"), (bad, "n"), (alert("b:2", fp="fp3"), "n")])
    history = [msgpack.unpackb(letter) for letter, is_alert in rejected if is_alert]
    assert len(history) == 1
    assert history[0]["stage"] == "store"
    assert "mapper_parsing_exception" in history[0]["reason"]
    assert history[0]["payload"]["eventId"] == "b:1"
    index = f"{store.prefix}-alerts-{DAY}"
    assert store.get(index, "b:0") and store.get(index, "b:2")
    assert store.get(index, "b:1") is None


def test_huge_values_are_kept_without_breaking_the_mapping(store):
    """Terms past 32 KB make a Lucene field refuse the document: keyword fields stop indexing
    at 8 KB, annotations are stored, not indexed."""
    big = alert("b:0")
    big["name"] = "N" * 40_000
    big["annotations"] = {"summary": "S" * 50_000, "runbook": "x"}
    assert store.write([(big, "n")]) == []
    doc = store.get(f"{store.prefix}-alerts-{DAY}", "b:0")
    assert len(doc["name"]) == 40_000 and len(doc["annotations"]["summary"]) == 50_000


def test_farm_deletes_daily_history_indices_past_retention(store):
    """Without ILM/ISM (the Maven Central builds have neither), farm deletes expired days."""
    from farm.sinks.engine_client import delete_expired

    store.write([(alert("b:0"), "n")])  # today's index (and the current-state index)
    old = f"{store.prefix}-alerts-2020.01.01"
    store.engine.request("PUT", f"/{old}")
    deleted = delete_expired(store.engine, store.prefix, days=30, now=SENT_AT + 86_400)
    assert deleted == [old]
    assert store.engine.request("HEAD", f"/{old}", ok=None)[0] == 404
    assert store.count(f"{store.prefix}-alerts-{DAY}") == 1
    assert store.writer.lifecycle in ("ilm", "ism", "farm")
