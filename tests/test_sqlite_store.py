"""The embedded SQLite store: idempotent history, ordered current state, duplicate counts."""

from __future__ import annotations

import json
import time

from farm.sinks.sqlite import SqliteEncoder, SqliteWriter

ENC = SqliteEncoder()


def alert(event_id: str, fp: str = "fp1", status: str = "firing",
          seen: str = "2026-01-01T00:00:00.000Z",
          name: str = "DiskFull", description: str = "disk is full") -> dict:
    return {"eventId": event_id, "fingerprint": fp, "name": name, "status": status,
            "severity": "warning", "lastReceived": seen, "description": description,
            "message": None, "labels": {"host": "db-1"}}


def payload(items, sent_at=100.0, tenant="t1") -> bytes:
    return ENC.encode(tenant, sent_at, items)


def rows(writer, sql):
    return writer.db.execute(sql).fetchall()


def test_history_is_idempotent_on_redelivery(tmp_path):
    w = SqliteWriter(tmp_path / "a.db")
    body = payload([(alert("b:0"), "n"), (alert("b:1", fp="fp2"), "n")])
    w.write([body])
    w.write([body])
    assert rows(w, "SELECT eventId FROM alerts ORDER BY eventId") == [("b:0",), ("b:1",)]
    doc = json.loads(rows(w, "SELECT doc FROM alerts WHERE eventId='b:0'")[0][0])
    assert doc["labels"] == {"host": "db-1"}


def test_full_duplicates_stay_out_of_history_and_count_on_current_state(tmp_path):
    w = SqliteWriter(tmp_path / "a.db")
    w.write([payload([(alert("b:0"), "n"), (alert("b:1", seen="2026-01-01T00:00:05.000Z"), "f"),
                      (alert("b:2", seen="2026-01-01T00:00:09.000Z"), "f")])])
    assert rows(w, "SELECT count(*) FROM alerts") == [(1,)]
    w.write([payload([(alert("c:0", seen="2026-01-01T00:01:00.000Z"), "f")], sent_at=101)])
    (dups, seen, doc), = rows(w, "SELECT duplicates, lastReceived, doc FROM alerts_current")
    assert dups == 3
    assert seen == "2026-01-01T00:01:00.000Z"
    assert json.loads(doc)["lastReceived"] == seen


def test_a_new_version_replaces_current_state_and_resets_the_count(tmp_path):
    w = SqliteWriter(tmp_path / "a.db")
    w.write([payload([(alert("b:0"), "n"), (alert("b:1"), "f")], sent_at=100)])
    w.write([payload([(alert("c:0", status="resolved"), "p")], sent_at=200)])
    assert rows(w, "SELECT eventId, status, duplicates FROM alerts_current") == \
        [("c:0", "resolved", 0)]
    assert rows(w, "SELECT count(*) FROM alerts") == [(2,)]


def test_an_older_redelivered_version_never_overwrites_a_newer_one(tmp_path):
    w = SqliteWriter(tmp_path / "a.db")
    old = payload([(alert("b:0"), "n")], sent_at=100)
    w.write([old])
    w.write([payload([(alert("c:0", status="resolved"), "p")], sent_at=200)])
    w.write([old])  # batch b redelivered after a crash
    assert rows(w, "SELECT eventId, status FROM alerts_current") == [("c:0", "resolved")]


def test_duplicates_that_overtake_their_version_are_not_lost(tmp_path):
    """Worker B's full duplicate can commit before worker A's version of the fingerprint."""
    w = SqliteWriter(tmp_path / "a.db")
    w.write([payload([(alert("d:0", seen="2026-01-01T00:00:07.000Z"), "f")], sent_at=101)])
    assert rows(w, "SELECT eventId, duplicates FROM alerts_current") == [("", 1)]
    w.write([payload([(alert("a:0"), "n")], sent_at=100)])
    assert rows(w, "SELECT eventId, duplicates, lastReceived FROM alerts_current") == \
        [("a:0", 1, "2026-01-01T00:00:07.000Z")]


def test_current_state_is_searchable_by_text(tmp_path):
    w = SqliteWriter(tmp_path / "a.db")
    w.write([payload([(alert("b:0", description="replication lag on pg-3"), "n"),
                      (alert("b:1", fp="fp2", description="disk full"), "n")])])
    w.write([payload([(alert("c:0", description="replication healthy"), "p")], sent_at=200)])
    w.catch_up_fts()  # the index catches up in the background; now, for the test
    hits = rows(w, "SELECT c.eventId FROM alerts_current_fts f JOIN alerts_current c "
                   "ON c.id = f.rowid WHERE alerts_current_fts MATCH 'replication'")
    assert hits == [("c:0",)]
    assert rows(w, "SELECT count(*) FROM alerts_current_fts WHERE alerts_current_fts "
                   "MATCH 'lag'") == [(0,)]


def test_history_full_text_search_is_opt_in(tmp_path):
    w = SqliteWriter(tmp_path / "a.db", fts_history=True)
    w.write([payload([(alert("b:0", description="replication lag"), "n")])])
    w.write([payload([(alert("b:0", description="replication lag"), "n")])])  # redelivery
    hits = rows(w, "SELECT a.eventId FROM alerts_fts f JOIN alerts a ON a.rowid = f.rowid "
                   "WHERE alerts_fts MATCH 'lag'")
    assert hits == [("b:0",)]


def test_retention_deletes_history_and_state_older_than_the_limit(tmp_path):
    w = SqliteWriter(tmp_path / "a.db", retention_days=1)
    w.write([payload([(alert("old:0", seen="2020-01-01T00:00:00.000Z"), "n")])])
    w.db.execute("UPDATE commits SET committedAt = committedAt - 3 * 86400")
    now = time.time()
    w.write([payload([(alert("new:0", fp="fp2", seen="2099-01-01T00:00:00.000Z"), "n")])])
    assert w.maintain(now) == 2
    assert rows(w, "SELECT eventId FROM alerts") == [("new:0",)]
    assert rows(w, "SELECT eventId FROM alerts_current") == [("new:0",)]
