"""The SQLite store's three files: history and current state committed by separate threads (a
flush committed by one and not the other replays to the same state), the full-text index caught
up in the background (after a crash too, and `farm search` says when it is behind), and older
or newer data folders (migrated, or refused with one line)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time

import pytest
from click.testing import CliRunner

from farm.cli import main
from farm.config import load
from farm.search import Query, search, text_freshness
from farm.sinks.sqlite import SqliteEncoder, SqliteWriter
from farm.sinks.sqlite_schema import (
    HISTORY_PAGE_SIZE,
    SCHEMA_VERSION,
    StoreSchemaError,
    current_path,
    fts_path,
    open_reader,
)
from tests.support import store_writer
from tests.support.waiting import wait_until

ENC = SqliteEncoder()
NOW = "2026-11-30T10:00:00.000Z"


def alert(event_id: str, fp: str, description: str, seen: str = NOW) -> dict:
    return {"eventId": event_id, "fingerprint": fp, "name": "DiskFull", "status": "firing",
            "severity": "warning", "lastReceived": seen, "description": description,
            "message": None, "tenant": "t1", "labels": {"host": fp}}


def flush(batch: str, count: int = 50, sent_at: float = 100.0, word: str = "volume",
          dups: int = 2) -> list[bytes]:
    """One flush: `count` new alerts of batch `batch`, then `dups` full duplicates of each of
    the first fingerprints (a counter bump each)."""
    items = [(alert(f"{batch}:{i}", f"fp{i}", f"{word} {batch} {i} is full"), "n")
             for i in range(count)]
    items += [(alert(f"{batch}:{count + i}", f"fp{i}", "same"), "f") for i in range(dups)]
    return [ENC.encode("t1", sent_at, items)]


def snapshot(path) -> dict:
    """Everything a reader sees: history, current state with its documents, text matches."""
    db = open_reader(path)
    try:
        return {
            "history": db.execute("SELECT eventId, doc FROM alerts ORDER BY eventId").fetchall(),
            "current": db.execute("SELECT tenant, fingerprint, eventId, duplicates, doc "
                                  "FROM alerts_current ORDER BY fingerprint").fetchall(),
            "text": db.execute("SELECT c.eventId FROM alerts_current_fts f JOIN alerts_current c "
                               "ON c.id = f.rowid WHERE alerts_current_fts MATCH 'volume' "
                               "ORDER BY c.eventId").fetchall(),
        }
    finally:
        db.close()


def reference(tmp_path, *flushes: list[bytes]) -> dict:
    """The state of a store that committed each flush once, without a fault."""
    writer = SqliteWriter(tmp_path / "reference" / "farm.db")
    for payloads in flushes:
        writer.write(payloads)
    writer.close()
    return snapshot(tmp_path / "reference" / "farm.db")


def hold_write_lock(path) -> sqlite3.Connection:
    """Hold one of the store's files locked for writing, as another writer would."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    return db


def test_a_writer_killed_between_its_two_commits_replays_to_the_same_state(tmp_path):
    """History committed, the current state not (its file was locked): SIGKILL, then the flush
    is redelivered, as the workers' unacked batches are after an indexer dies."""
    db_path = tmp_path / "data" / "farm.db"
    first, second = flush("a"), flush("b", sent_at=200.0)
    SqliteWriter(db_path).close()  # the files exist, so the test can lock one
    blocker = hold_write_lock(current_path(db_path))
    child = store_writer.start(db_path, first, tmp_path)
    try:
        history = sqlite3.connect(db_path)
        wait_until(lambda: history.execute("SELECT count(*) FROM alerts").fetchone()[0] == 50,
                   "the history half to commit")
        history.close()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        blocker.execute("ROLLBACK")
        blocker.close()
    assert snapshot(db_path)["current"] == []  # killed between the two commits
    writer = SqliteWriter(db_path)
    writer.write(first)   # redelivered
    writer.write(second)
    writer.close()
    assert snapshot(db_path) == reference(tmp_path, first, second)


def test_the_full_text_index_catches_up_after_a_crash(tmp_path):
    """Both halves committed, the index not (its file was locked): SIGKILL. Search by text
    misses the alerts and says how far behind it is; the next writer indexes them."""
    db_path = tmp_path / "data" / "farm.db"
    payloads = flush("a")
    SqliteWriter(db_path).close()
    blocker = hold_write_lock(fts_path(db_path))
    child = store_writer.start(db_path, payloads, tmp_path)
    try:
        assert child.stdout.readline().strip() == "committed"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        blocker.execute("ROLLBACK")
        blocker.close()
    cfg = load(None, env={"FARM_FARM_DATA_DIR": str(tmp_path / "data")})
    assert search(cfg, Query("volume")) == []
    time.sleep(1.1)  # the index is now at least STALE_SECONDS behind the commit
    behind = text_freshness(cfg, Query("volume"))
    assert behind is not None and behind.pending == 50
    answer = CliRunner().invoke(main, ["search", "volume", "--config", "/dev/null"],
                                env={"FARM_FARM_DATA_DIR": str(tmp_path / "data")})
    assert answer.exit_code == 0
    assert "full-text index is" in answer.stderr and "50 changed alerts" in answer.stderr
    writer = SqliteWriter(db_path)  # its index thread resumes where the last one stopped
    wait_until(lambda: len(search(cfg, Query("volume", limit=100))) == 50,
               "the index to catch up")
    writer.close()
    assert text_freshness(cfg, Query("volume")) is None
    assert snapshot(db_path) == reference(tmp_path, payloads)


def test_a_version_kept_alive_by_duplicates_keeps_its_document_past_retention(tmp_path):
    """The current state reads its document from history: retention must not delete it."""
    writer = SqliteWriter(tmp_path / "farm.db", retention_days=1)
    writer.write(flush("old", count=1, dups=0))
    writer.db.execute("UPDATE commits SET committedAt = committedAt - 3 * 86400")
    seen = "2099-01-01T00:00:00.000Z"
    writer.write([ENC.encode("t1", 200.0, [(alert("dup:0", "fp0", "x", seen), "f")])])
    writer.maintain(time.time())
    (event_id, doc), = writer.db.execute("SELECT eventId, doc FROM alerts_current").fetchall()
    writer.close()
    assert event_id == "old:0"
    assert json.loads(doc)["lastReceived"] == seen


OLD_LAYOUT = """
CREATE TABLE alerts (eventId TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, tenant TEXT NOT NULL,
    lastReceived TEXT NOT NULL, severity TEXT, status TEXT, name TEXT, doc TEXT NOT NULL);
CREATE TABLE alerts_current (id INTEGER PRIMARY KEY, tenant TEXT NOT NULL,
    fingerprint TEXT NOT NULL, eventId TEXT NOT NULL, lastReceived TEXT NOT NULL, severity TEXT,
    status TEXT, name TEXT, description TEXT, message TEXT,
    duplicates INTEGER NOT NULL DEFAULT 0, sentAt REAL NOT NULL, doc TEXT NOT NULL,
    UNIQUE (tenant, fingerprint));
CREATE TABLE commits (txn INTEGER PRIMARY KEY, committedAt REAL NOT NULL,
    lastRowid INTEGER NOT NULL);
CREATE VIRTUAL TABLE alerts_current_fts USING fts5(
    name, description, message, content='alerts_current', content_rowid='id');
CREATE TRIGGER alerts_current_ai AFTER INSERT ON alerts_current BEGIN
    INSERT INTO alerts_current_fts(rowid, name, description, message)
    VALUES (new.id, new.name, new.description, new.message);
END;
"""


def test_a_data_folder_of_the_single_file_layout_is_migrated(tmp_path):
    """Everything in farm.db (before the split): the current state moves to its own file with
    its documents kept (one whose history row retention had deleted goes back into history),
    and the index is rebuilt in the background."""
    data = tmp_path / "data"
    data.mkdir()
    old = sqlite3.connect(data / "farm.db")
    old.executescript(OLD_LAYOUT)
    doc = json.dumps(alert("a:0", "fp0", "volume a 0 is full"))
    old.execute("INSERT INTO alerts_current VALUES (1, 't1', 'fp0', 'a:0', ?, 'warning', "
                "'firing', 'DiskFull', 'volume a 0 is full', NULL, 4, 100.0, ?)", (NOW, doc))
    old.commit()
    old.close()
    cfg = load(None, env={"FARM_FARM_DATA_DIR": str(data)})
    writer = SqliteWriter(cfg.sqlite_path)
    writer.catch_up_fts()
    writer.close()
    hits = search(cfg, Query("volume"))
    assert [(h["eventId"], h["duplicates"], h["labels"]) for h in hits] == \
        [("a:0", 4, {"host": "fp0"})]
    db = sqlite3.connect(data / "farm.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'alerts_current'") \
        .fetchall() == []
    db.close()


def page_size(path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA page_size").fetchone()[0]
    finally:
        db.close()


def test_a_new_store_keeps_history_in_large_pages_and_an_old_store_keeps_its_own(tmp_path):
    """History is created in HISTORY_PAGE_SIZE pages, the current state in SQLite's default; a
    store created with other pages keeps them and stores and reads as before."""
    new = tmp_path / "new" / "farm.db"
    writer = SqliteWriter(new)
    writer.write(flush("a"))
    writer.close()
    assert (page_size(new), page_size(current_path(new))) == (HISTORY_PAGE_SIZE, 4096)

    old = tmp_path / "old" / "farm.db"
    old.parent.mkdir()
    made = sqlite3.connect(old)
    made.execute("PRAGMA page_size=4096")
    made.execute("PRAGMA journal_mode=WAL")
    made.close()
    writer = SqliteWriter(old)
    writer.write(flush("a"))
    writer.catch_up_fts()
    writer.close()
    assert page_size(old) == 4096
    assert snapshot(old) == snapshot(new)


def test_a_new_full_text_index_keeps_no_column_sizes_and_still_finds_words(tmp_path):
    """Nothing farm runs reads per-row column sizes (matches are ordered by time), so a new
    index does not write them; words, prefixes and punctuated words are found as before."""
    path = tmp_path / "farm.db"
    writer = SqliteWriter(path)
    writer.write([ENC.encode("t1", 100.0, [
        (alert("a:0", "fp0", "volume db-01.dc1 is full"), "n"),
        (alert("a:1", "fp1", "volume db-02.dc1 is full"), "n")])])
    writer.catch_up_fts()
    writer.close()
    db = sqlite3.connect(fts_path(path))
    assert db.execute("SELECT name FROM sqlite_master WHERE name LIKE "
                      "'alerts_current_fts_docsize'").fetchall() == []
    db.close()
    cfg = load(None, env={"FARM_FARM_DATA_DIR": str(tmp_path)})
    assert [h["eventId"] for h in search(cfg, Query("db-01.dc1"))] == ["a:0"]
    assert sorted(h["eventId"] for h in search(cfg, Query("db-0* full"))) == ["a:0", "a:1"]


def test_a_data_folder_of_a_newer_farm_is_refused_with_one_line(tmp_path):
    db = sqlite3.connect(tmp_path / "farm.db")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreSchemaError) as refused:
        SqliteWriter(tmp_path / "farm.db")
    assert "\n" not in str(refused.value)
    assert "newer than this farm's" in str(refused.value)
