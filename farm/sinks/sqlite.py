"""The embedded SQLite store: `alerts` (history, one row per stored event) and `alerts_current`
(one row per tenant + fingerprint), in WAL mode, in separate files written by separate threads
(farm/sinks/sqlite_schema.py describes the files).

History stays lean (primary key only) because every index costs insert speed; full-text search
(FTS5 over name, description, message) covers the current state, kept up to date in the
background (farm/sinks/sqlite_fts.py), and history only when `[store] fts_history` is set.
`commits` logs each history transaction's commit time and last rowid: it drives retention by age
and lets loadgen measure sent_at -> commit latency.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import msgpack
import orjson

from farm.alert import iso_ms, json_default
from farm.correlation import store as incident_store
from farm.dedup import FULL
from farm.sinks import raw as raw_events
from farm.sinks.current import coalesce
from farm.sinks.sqlite_fts import Freshness, FtsCatchUp
from farm.sinks.sqlite_schema import (
    CURRENT_SCHEMA,
    HISTORY_FTS,
    HISTORY_SCHEMA,
    current_path,
    open_reader,
    open_writable,
    prepare,
)

INSERT_HISTORY = """
INSERT OR REPLACE INTO alerts (eventId, fingerprint, tenant, lastReceived, severity, status,
                               name, doc)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""

# The current state keeps no document of its own: readers take the version's from history
# (farm/sinks/sqlite_schema.py, the `alerts_current` view).
UPSERT_VERSION = """
INSERT INTO current_state (tenant, fingerprint, eventId, lastReceived, severity, status, name,
                           description, message, duplicates, sentAt)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (tenant, fingerprint) DO UPDATE SET
    eventId = excluded.eventId,
    lastReceived = CASE WHEN current_state.eventId = ''
                        THEN max(excluded.lastReceived, current_state.lastReceived)
                        ELSE excluded.lastReceived END,
    severity = excluded.severity, status = excluded.status, name = excluded.name,
    description = excluded.description, message = excluded.message,
    duplicates = excluded.duplicates
                 + CASE WHEN current_state.eventId = '' THEN current_state.duplicates ELSE 0 END,
    sentAt = excluded.sentAt
WHERE excluded.sentAt >= current_state.sentAt
"""

# A full duplicate's version may still be on its way (decided by another worker, not yet
# committed): then a placeholder row ('' eventId) keeps the count until the version lands.
BUMP_DUPLICATES = """
INSERT INTO current_state (tenant, fingerprint, eventId, lastReceived, duplicates, sentAt)
VALUES (?, ?, '', ?, ?, 0)
ON CONFLICT (tenant, fingerprint) DO UPDATE SET
    duplicates = current_state.duplicates + excluded.duplicates,
    lastReceived = max(current_state.lastReceived, excluded.lastReceived)
"""


class SqliteEncoder:
    """Worker side: a batch's decided alerts -> msgpack of (history rows, versions, bumps), and
    (incident rows, incident links) after them when the chunk touched incidents."""

    def encode(self, tenant: str, sent_at: float, items: list[tuple[dict, str]],
               incidents=None) -> bytes:
        history = [(alert["eventId"], alert["fingerprint"], tenant, alert["lastReceived"],
                    alert["severity"], alert["status"], alert["name"],
                    orjson.dumps(alert, default=json_default).decode())
                   for alert, decision in items if decision != FULL]
        versions, bumps = coalesce(items)
        current = [(tenant, a["fingerprint"], a["eventId"], a["lastReceived"], a["severity"],
                    a["status"], a["name"], _text(a.get("description")), _text(a.get("message")),
                    dups, sent_at) for a, dups in versions]
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
    """farm.db with the current state and its full-text index attached (creating or migrating
    the store first unless readonly): every table by its plain name."""
    if not readonly:
        prepare(path)
    return open_reader(path, readonly=readonly)


log = logging.getLogger("farm.indexer")

# WAL pages written back to the database by the background checkpointer; past the hard limit
# the writer checkpoints itself, so the WAL stays bounded even if the checkpointer falls behind.
CHECKPOINT_EVERY_SECONDS = 1.0
WAL_HARD_LIMIT_PAGES = 100_000

# Queue entries the full-text index has covered go in a later current-state transaction.
TRIM_PENDING = """
DELETE FROM fts_pending WHERE seq <= ?
"""
# The first commit that left the queue at a sequence number keeps its time (a later one that
# queued nothing must not make the index look fresher than it is).
MARK_CURRENT_COMMIT = """
INSERT OR IGNORE INTO current_commits (lastSeq, committedAt)
VALUES (coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'fts_pending'), 0), ?)
"""


# What the console's reads need on a store of millions of rows (farm/console/): the current
# state newest first, and one fingerprint's history; and the maintenance watcher's, the alerts
# held in maintenance (a partial index: it holds those rows only).
HISTORY_READ_INDEXES = """
CREATE INDEX IF NOT EXISTS alerts_fingerprint ON alerts (fingerprint);
"""
CURRENT_READ_INDEXES = """
CREATE INDEX IF NOT EXISTS current_state_received ON current_state (lastReceived);
CREATE INDEX IF NOT EXISTS current_state_held ON current_state (lastReceived)
    WHERE status = 'maintenance';
"""


class Checkpointer(threading.Thread):
    """Copies each file's WAL into its database on its own connection, off the commit path (a
    PASSIVE checkpoint never blocks the writer; SQLite runs it with the GIL released)."""

    def __init__(self, paths: list[Path]):
        super().__init__(name="farm-sqlite-checkpoint", daemon=True)
        self.dbs = [sqlite3.connect(p, check_same_thread=False, isolation_level=None)
                    for p in paths]
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(CHECKPOINT_EVERY_SECONDS):
            for db in self.dbs:
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:
                    log.warning("background checkpoint failed: %s", exc)

    def stop(self) -> None:
        self.stopped.set()
        self.join()
        for db in self.dbs:
            db.close()


class Lane(threading.Thread):
    """One database file's writer thread: runs calls on its own connection, in the order they
    were submitted, each resolving its Future."""

    def __init__(self, name: str, db: sqlite3.Connection):
        super().__init__(name=name, daemon=True)
        self.db = db
        self.calls: queue.SimpleQueue = queue.SimpleQueue()

    def call(self, fn: Callable, *args) -> Future:
        future: Future = Future()
        self.calls.put((fn, args, future))
        return future

    def run(self) -> None:
        while (item := self.calls.get()) is not None:
            fn, args, future = item
            try:
                future.set_result(fn(self.db, *args))
            except BaseException as exc:  # handed to whoever waits on the Future
                future.set_exception(exc)

    def stop(self) -> None:
        self.calls.put(None)
        self.join()
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.close()


def both(first: Future, second: Future) -> Future:
    """A Future done when both are: the first exception, or [] (SQLite rejects nothing)."""
    out: Future = Future()
    lock = threading.Lock()
    left = [2]

    def one_done(_f: Future) -> None:
        with lock:
            left[0] -= 1
            if left[0]:
                return
        problem = first.exception() or second.exception()
        if problem is not None:
            out.set_exception(problem)
        else:
            out.set_result([])

    first.add_done_callback(one_done)
    second.add_done_callback(one_done)
    return out


def transaction(db: sqlite3.Connection, steps: Callable[[], None]) -> None:
    """Run `steps` in one write transaction; roll back and re-raise on any failure."""
    db.execute("BEGIN IMMEDIATE")
    try:
        steps()
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def write_history(db: sqlite3.Connection, history: list, incidents: list, links: list,
                  raws: list) -> None:
    def steps() -> None:
        db.executemany(INSERT_HISTORY, history)
        incident_store.write_sqlite(db, incidents, links)
        if raws:
            raw_events.write_sqlite(db, raws)
        db.execute("INSERT INTO commits (committedAt, lastRowid) "
                   "VALUES (?, coalesce((SELECT max(rowid) FROM alerts), 0))", (time.time(),))
    transaction(db, steps)


def write_current(db: sqlite3.Connection, current: list, bumps: list, trim_to: int) -> None:
    def steps() -> None:
        db.executemany(UPSERT_VERSION, current)
        db.executemany(BUMP_DUPLICATES, bumps)
        if trim_to:
            db.execute(TRIM_PENDING, (trim_to,))
            db.execute("DELETE FROM current_commits WHERE lastSeq <= ?", (trim_to,))
        db.execute(MARK_CURRENT_COMMIT, (time.time(),))
    transaction(db, steps)


class SqliteWriter:
    """Indexer side: commits many encoded payloads, history and current state each in one
    transaction of its own file, on its own thread, at the same time.

    A flush is committed when both transactions are: only then does its Future resolve and the
    indexer let workers ack. A failure of either raises, and the indexer sends the whole flush
    again; that is safe because both halves are idempotent: history is keyed by eventId, and the
    current state takes a version only if its batch's sent_at is not older than the stored one
    (a redelivered or retried half adds its full duplicates' count again, as a redelivered batch
    always has). Commits are durable before they resolve (WAL, synchronous=FULL in both files).
    Two flushes may be in flight: the indexer takes the next while one commits.
    """

    max_in_flight = 2
    flush_bytes = 64 * 1024 * 1024

    def __init__(self, path: Path, retention_days: int = 0, fts_history: bool = False,
                 fts_report: Callable[[Freshness], None] | None = None,
                 raw_retention_days: int = 0):
        self.path = Path(path)
        self.retention_days = retention_days
        self.raw_retention_days = raw_retention_days
        prepare(self.path)
        history = open_writable(self.path, HISTORY_SCHEMA)
        history.executescript(raw_events.SQLITE_SCHEMA + HISTORY_READ_INDEXES)
        if fts_history:
            history.executescript(HISTORY_FTS)
        current = open_writable(current_path(self.path), CURRENT_SCHEMA)
        current.executescript(CURRENT_READ_INDEXES)
        for db in (history, current):
            db.execute("PRAGMA cache_size=-65536")
            db.execute(f"PRAGMA wal_autocheckpoint={WAL_HARD_LIMIT_PAGES}")
            db.execute("PRAGMA journal_size_limit=67108864")
        self.history = Lane("farm-sqlite-history", history)
        self.current = Lane("farm-sqlite-current", current)
        self.fts = FtsCatchUp(self.path, fts_report)
        self.checkpointer = Checkpointer([self.path, current_path(self.path)])
        self._last_maintenance = 0.0
        self._trimmed = self.fts.done
        self._inspect: sqlite3.Connection | None = None
        for thread in (self.history, self.current, self.fts, self.checkpointer):
            thread.start()

    def submit(self, payloads: list[bytes]) -> Future:
        """Both halves of the flush to their threads; a Future of [] once both committed."""
        history, current, bumps, incidents, links, raws = [], [], [], [], [], []
        for payload in payloads:
            # incidents only when there are; kept raw events after them
            h, c, b, *correlated = msgpack.unpackb(payload)
            history += h
            current += c
            bumps += b
            if correlated:
                incidents += correlated[0]
                links += correlated[1]
                raws += correlated[2] if len(correlated) > 2 else ()
        trim_to = self.fts.done if self.fts.done > self._trimmed else 0
        self._trimmed = max(self._trimmed, trim_to)
        done = both(self.history.call(write_history, history, incidents, links, raws),
                    self.current.call(write_current, current, bumps, trim_to))
        done.add_done_callback(lambda _f: self.fts.wake.set())
        return done

    def write(self, payloads: list[bytes]) -> list:
        """Commit every payload (both files) before returning; raises what failed."""
        return self.submit(payloads).result()

    def catch_up_fts(self) -> None:
        """Index everything committed so far into the full-text index, now (for tests and
        tools; the indexer lets it catch up in the background)."""
        self.fts.catch_up()

    @property
    def db(self) -> sqlite3.Connection:
        """A connection with every table attached, to inspect the store (tests, tools)."""
        if self._inspect is None:
            self._inspect = open_reader(self.path, readonly=False)
        return self._inspect

    def maintain(self, now: float | None = None) -> int:
        """Delete history and current state older than retention_days, and kept raw events
        older than raw_retention_days; returns rows deleted."""
        now = time.time() if now is None else now
        if not (self.retention_days or self.raw_retention_days) \
                or now - self._last_maintenance < 600:
            return 0
        self._last_maintenance = now
        deleted = 0
        if self.raw_retention_days:
            deleted += self.history.call(_expire_raw,
                                         now - self.raw_retention_days * 86_400).result()
        if not self.retention_days:
            return deleted
        cutoff = now - self.retention_days * 86_400
        deleted += self.current.call(_expire_current, iso_ms(cutoff)).result()
        # After the current state's, so history kept only for it can go in the same pass.
        return deleted + self.history.call(_expire_history, cutoff,
                                           current_path(self.path)).result()

    def close(self) -> None:
        if self._inspect is not None:
            self._inspect.close()
        self.checkpointer.stop()
        self.history.stop()
        self.current.stop()
        self.fts.stop()


def _expire_history(db: sqlite3.Connection, cutoff: float, current: Path) -> int:
    """History committed before `cutoff`, except the versions the current state still shows
    (their documents are the current state's)."""
    row = db.execute("SELECT max(lastRowid), max(txn) FROM commits WHERE committedAt < ?",
                     (cutoff,)).fetchone()
    if row[0] is None:
        return 0
    db.execute("ATTACH DATABASE ? AS cur", (str(current),))
    try:
        db.execute("BEGIN")  # deferred: farm-current.db is only read, never locked for writing
        try:
            deleted = db.execute("DELETE FROM alerts WHERE rowid <= ? AND eventId NOT IN "
                                 "(SELECT eventId FROM cur.current_state)", (row[0],)).rowcount
            db.execute("DELETE FROM commits WHERE txn < ?", (row[1],))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    finally:
        db.execute("DETACH DATABASE cur")
    return deleted


def _expire_current(db: sqlite3.Connection, cutoff: str) -> int:
    deleted = [0]

    def steps() -> None:
        deleted[0] = db.execute("DELETE FROM current_state WHERE lastReceived < ?",
                                (cutoff,)).rowcount
    transaction(db, steps)
    return deleted[0]


def _expire_raw(db: sqlite3.Connection, cutoff: float) -> int:
    deleted = [0]

    def steps() -> None:
        deleted[0] = raw_events.expire_sqlite(db, cutoff)
    transaction(db, steps)
    return deleted[0]
