"""The embedded SQLite store: `alerts` (history, one row per stored event) and `alerts_current`
(one row per tenant + fingerprint), in WAL mode.

History stays lean (primary key only) because every index costs insert speed; full-text search
(FTS5 over name, description, message) covers the current state, and history only when
`[store] fts_history` is set. `commits` logs each transaction's commit time and last history
rowid: it drives retention by age and lets loadgen measure sent_at -> commit latency.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import msgpack
import orjson

from farm.alert import iso_ms, json_default
from farm.correlation import store as incident_store
from farm.dedup import FULL
from farm.sinks import raw as raw_events
from farm.sinks.current import coalesce

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    eventId      TEXT PRIMARY KEY,
    fingerprint  TEXT NOT NULL,
    tenant       TEXT NOT NULL,
    lastReceived TEXT NOT NULL,
    severity     TEXT,
    status       TEXT,
    name         TEXT,
    doc          TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts_current (
    id           INTEGER PRIMARY KEY,
    tenant       TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    eventId      TEXT NOT NULL,       -- '' while only duplicates of an uncommitted version exist
    lastReceived TEXT NOT NULL,
    severity     TEXT,
    status       TEXT,
    name         TEXT,
    description  TEXT,
    message      TEXT,
    duplicates   INTEGER NOT NULL DEFAULT 0,  -- full duplicates of this version (eventId)
                                              -- since it was stored; a new version restarts it
    sentAt       REAL NOT NULL,       -- orders versions: an older redelivery never wins
    doc          TEXT NOT NULL,
    UNIQUE (tenant, fingerprint)
);
CREATE TABLE IF NOT EXISTS commits (
    txn          INTEGER PRIMARY KEY,
    committedAt  REAL NOT NULL,
    lastRowid    INTEGER NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS alerts_current_fts USING fts5(
    name, description, message, content='alerts_current', content_rowid='id');
CREATE TRIGGER IF NOT EXISTS alerts_current_ai AFTER INSERT ON alerts_current BEGIN
    INSERT INTO alerts_current_fts(rowid, name, description, message)
    VALUES (new.id, new.name, new.description, new.message);
END;
CREATE TRIGGER IF NOT EXISTS alerts_current_ad AFTER DELETE ON alerts_current BEGIN
    INSERT INTO alerts_current_fts(alerts_current_fts, rowid, name, description, message)
    VALUES ('delete', old.id, old.name, old.description, old.message);
END;
CREATE TRIGGER IF NOT EXISTS alerts_current_au AFTER UPDATE ON alerts_current
WHEN old.name IS NOT new.name OR old.description IS NOT new.description
     OR old.message IS NOT new.message BEGIN
    INSERT INTO alerts_current_fts(alerts_current_fts, rowid, name, description, message)
    VALUES ('delete', old.id, old.name, old.description, old.message);
    INSERT INTO alerts_current_fts(rowid, name, description, message)
    VALUES (new.id, new.name, new.description, new.message);
END;
"""

# What the console's reads need on a store of millions of rows (farm/console/): the current
# state newest first, and one fingerprint's history.
READ_INDEXES = """
CREATE INDEX IF NOT EXISTS alerts_current_received ON alerts_current (lastReceived);
CREATE INDEX IF NOT EXISTS alerts_fingerprint ON alerts (fingerprint);
"""

HISTORY_FTS = """
CREATE VIRTUAL TABLE IF NOT EXISTS alerts_fts USING fts5(
    name, description, message, content='alerts_fts_source', content_rowid='rowid');
CREATE VIEW IF NOT EXISTS alerts_fts_source AS
    SELECT rowid, name, doc ->> '$.description' AS description, doc ->> '$.message' AS message
    FROM alerts;
CREATE TRIGGER IF NOT EXISTS alerts_ai AFTER INSERT ON alerts BEGIN
    INSERT INTO alerts_fts(rowid, name, description, message)
    VALUES (new.rowid, new.name, new.doc ->> '$.description', new.doc ->> '$.message');
END;
CREATE TRIGGER IF NOT EXISTS alerts_ad AFTER DELETE ON alerts BEGIN
    INSERT INTO alerts_fts(alerts_fts, rowid, name, description, message)
    VALUES ('delete', old.rowid, old.name, old.doc ->> '$.description', old.doc ->> '$.message');
END;
"""

INSERT_HISTORY = """
INSERT OR REPLACE INTO alerts (eventId, fingerprint, tenant, lastReceived, severity, status,
                               name, doc)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""

UPSERT_VERSION = """
INSERT INTO alerts_current (tenant, fingerprint, eventId, lastReceived, severity, status, name,
                            description, message, duplicates, sentAt, doc)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (tenant, fingerprint) DO UPDATE SET
    eventId = excluded.eventId,
    lastReceived = CASE WHEN alerts_current.eventId = ''
                        THEN max(excluded.lastReceived, alerts_current.lastReceived)
                        ELSE excluded.lastReceived END,
    severity = excluded.severity, status = excluded.status, name = excluded.name,
    description = excluded.description, message = excluded.message,
    duplicates = excluded.duplicates
                 + CASE WHEN alerts_current.eventId = '' THEN alerts_current.duplicates ELSE 0 END,
    sentAt = excluded.sentAt, doc = excluded.doc
WHERE excluded.sentAt >= alerts_current.sentAt
"""

# A full duplicate's version may still be on its way (decided by another worker, not yet
# committed): then a placeholder row ('' eventId) keeps the count until the version lands.
BUMP_DUPLICATES = """
INSERT INTO alerts_current (tenant, fingerprint, eventId, lastReceived, duplicates, sentAt, doc)
VALUES (?, ?, '', ?, ?, 0, '{}')
ON CONFLICT (tenant, fingerprint) DO UPDATE SET
    duplicates = alerts_current.duplicates + excluded.duplicates,
    lastReceived = max(alerts_current.lastReceived, excluded.lastReceived),
    doc = CASE WHEN alerts_current.eventId = '' THEN alerts_current.doc
               ELSE json_set(alerts_current.doc, '$.lastReceived',
                             max(alerts_current.lastReceived, excluded.lastReceived)) END
"""


class SqliteEncoder:
    """Worker side: a batch's decided alerts -> msgpack of (history rows, versions, bumps), and
    (incident rows, incident links) after them when the chunk touched incidents."""

    def encode(self, tenant: str, sent_at: float, items: list[tuple[dict, str]],
               incidents=None) -> bytes:
        history = []
        docs: dict[int, str] = {}
        for alert, decision in items:
            if decision == FULL:
                continue
            doc = orjson.dumps(alert, default=json_default).decode()
            docs[id(alert)] = doc
            history.append((alert["eventId"], alert["fingerprint"], tenant, alert["lastReceived"],
                            alert["severity"], alert["status"], alert["name"], doc))
        versions, bumps = coalesce(items)
        current = [(tenant, a["fingerprint"], a["eventId"], a["lastReceived"], a["severity"],
                    a["status"], a["name"], _text(a.get("description")), _text(a.get("message")),
                    dups, sent_at, docs[id(a)]) for a, dups in versions]
        bump_rows = [(tenant, fp, seen, count) for fp, count, seen in bumps]
        if not incidents:
            return msgpack.packb((history, current, bump_rows))
        incident_rows, links = incident_store.sqlite_rows(tenant, incidents)
        return msgpack.packb((history, current, bump_rows, incident_rows, links))

    def encode_raw(self, events: list[dict]) -> bytes:
        """A payload of nothing but kept raw events (farm/sinks/raw.py)."""
        return msgpack.packb(([], [], [], [], [], events))


def _text(value: object) -> str | None:
    return value if value is None or isinstance(value, str) else str(value)


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """Open the store with farm's pragmas (creating schema unless readonly)."""
    if readonly:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before the indexer lets workers ack it, even across a
        # power loss. It costs one fsync per transaction (a few per second).
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA recursive_triggers=ON")  # REPLACE fires delete triggers (FTS)
        db.executescript(SCHEMA)
        db.executescript(incident_store.SCHEMA)
        db.executescript(raw_events.SQLITE_SCHEMA)
        db.executescript(READ_INDEXES)
    db.execute("PRAGMA busy_timeout=30000")
    return db


log = logging.getLogger("farm.indexer")

# WAL pages written back to the database by the background checkpointer; past the hard limit
# the writer checkpoints itself, so the WAL stays bounded even if the checkpointer falls behind.
CHECKPOINT_EVERY_SECONDS = 1.0
WAL_HARD_LIMIT_PAGES = 100_000


class Checkpointer(threading.Thread):
    """Copies the WAL into the database on its own connection, off the commit path (a PASSIVE
    checkpoint never blocks the writer; SQLite runs it with the GIL released)."""

    def __init__(self, path: Path):
        super().__init__(name="farm-sqlite-checkpoint", daemon=True)
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(CHECKPOINT_EVERY_SECONDS):
            try:
                self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                log.warning("background checkpoint failed: %s", exc)

    def stop(self) -> None:
        self.stopped.set()
        self.join()
        self.db.close()


class SqliteWriter:
    """Indexer side: commits many encoded payloads in one transaction.

    `write` commits every payload or none (a failure rolls back and raises it, and
    the indexer retries the whole flush); it rejects nothing, so it returns no dead letters.
    Commits are durable before they return (WAL, synchronous=FULL), and idempotent: history is
    keyed by eventId, and the current state takes a version only if its batch's sent_at is not
    older than the stored one. One writer, so `max_in_flight` is 1.
    """

    def __init__(self, path: Path, retention_days: int = 0, fts_history: bool = False,
                 raw_retention_days: int = 0):
        self.path = Path(path)
        self.retention_days = retention_days
        self.raw_retention_days = raw_retention_days
        self.db = connect(self.path)
        if fts_history:
            self.db.executescript(HISTORY_FTS)
        self.db.execute("PRAGMA cache_size=-65536")
        self.db.execute(f"PRAGMA wal_autocheckpoint={WAL_HARD_LIMIT_PAGES}")
        self.db.execute("PRAGMA journal_size_limit=67108864")
        self._last_maintenance = 0.0
        self.checkpointer = Checkpointer(self.path)
        self.checkpointer.start()

    max_in_flight = 1
    flush_bytes = 64 * 1024 * 1024

    def submit(self, payloads: list[bytes]) -> Future:
        """Commit synchronously (SQLite has one writer); the Future is already resolved."""
        future: Future = Future()
        try:
            future.set_result(self.write(payloads))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def write(self, payloads: list[bytes]) -> list:
        """Commit every payload or none. Returns rejected items (SQLite rejects none)."""
        history, current, bumps, incidents, links, raws = [], [], [], [], [], []
        for payload in payloads:
            h, c, b, *correlated = msgpack.unpackb(payload)  # incidents only when there are
            history += h
            current += c
            bumps += b
            if correlated:
                incidents += correlated[0]
                links += correlated[1]
                raws += correlated[2] if len(correlated) > 2 else ()
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(INSERT_HISTORY, history)
            db.executemany(UPSERT_VERSION, current)
            db.executemany(BUMP_DUPLICATES, bumps)
            incident_store.write_sqlite(db, incidents, links)
            if raws:
                raw_events.write_sqlite(db, raws)
            db.execute("INSERT INTO commits (committedAt, lastRowid) "
                       "VALUES (?, coalesce((SELECT max(rowid) FROM alerts), 0))", (time.time(),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return []

    def maintain(self, now: float | None = None) -> int:
        """Delete history and current state older than retention_days; returns rows deleted."""
        now = time.time() if now is None else now
        if not (self.retention_days or self.raw_retention_days) \
                or now - self._last_maintenance < 600:
            return 0
        self._last_maintenance = now
        cutoff = now - self.retention_days * 86_400
        db = self.db
        row = db.execute("SELECT max(lastRowid), max(txn) FROM commits WHERE committedAt < ?",
                         (cutoff,)).fetchone()
        deleted = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            if self.raw_retention_days:
                deleted += raw_events.expire_sqlite(db, now - self.raw_retention_days * 86_400)
            if not self.retention_days:
                db.execute("COMMIT")
                return deleted
            if row[0] is not None:
                deleted += db.execute("DELETE FROM alerts WHERE rowid <= ?", (row[0],)).rowcount
                db.execute("DELETE FROM commits WHERE txn < ?", (row[1],))
            deleted += db.execute("DELETE FROM alerts_current WHERE lastReceived < ?",
                                  (iso_ms(cutoff),)).rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return deleted

    def close(self) -> None:
        self.checkpointer.stop()
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.close()
