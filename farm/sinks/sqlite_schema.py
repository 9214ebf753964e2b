"""The embedded SQLite store's files, schema, connections and migration.

Three database files in the data folder, so that each has its own writer (SQLite locks per file,
and Python's sqlite3 releases the GIL while a statement steps):

- `farm.db`: history (`alerts`, one row per stored event), `commits` (each history transaction's
  commit time and last rowid: retention by age, and loadgen's sent_at -> commit latency), and
  incidents (`incidents`, `incident_alerts`).
- `farm-current.db`: `current_state` (one row per tenant + fingerprint, without a document: the
  version's document is its history row's) and `fts_pending`, the queue of current-state rows
  whose text changed (filled by triggers in the same transaction).
- `farm-fts.db`: `alerts_current_fts`, the FTS5 index over name, description and message of the
  current state, kept up to date in the background from `fts_pending` (farm/sinks/sqlite_fts.py)
  and `fts_state`, how far it has caught up.

Readers open `farm.db` with the other two ATTACHed (`open_reader`), which also defines the
view `alerts_current`: the current state with its document (the version's history document,
lastReceived brought up to date by later duplicates), the table's columns as they were before
the split. So `alerts`, `alerts_current`, `alerts_current_fts`, `incidents` and
`incident_alerts` are all reachable by their plain names from one connection.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from farm.correlation import store as incident_store

# PRAGMA user_version of farm.db. 0: everything in farm.db (before the split), 2: the split.
SCHEMA_VERSION = 2

# farm.db's page size when farm creates it (SQLite fixes it for good then; a store made with
# other pages keeps them). History rows are appended, about 1-2 KB each: with 16 KB pages the
# writer and the checkpointer handle fewer, fuller pages (measured in docs/performance.md,
# "History in 16 KB pages"). The current state's upserts land on random pages, where larger
# ones cost more, so farm-current.db keeps SQLite's 4 KB.
HISTORY_PAGE_SIZE = 16384

HISTORY_SCHEMA = """
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
CREATE TABLE IF NOT EXISTS commits (
    txn          INTEGER PRIMARY KEY,
    committedAt  REAL NOT NULL,
    lastRowid    INTEGER NOT NULL
);
"""

CURRENT_SCHEMA = """
CREATE TABLE IF NOT EXISTS current_state (
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
    UNIQUE (tenant, fingerprint)
);
-- Rows whose searchable text changed, for the full-text index to catch up with. AUTOINCREMENT:
-- sequence numbers never go back, even after the queue is emptied.
CREATE TABLE IF NOT EXISTS fts_pending (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           INTEGER NOT NULL
);
-- One row per current-state transaction that queued text: when it committed, and the highest
-- fts_pending seq it left. The full-text index's lag is the age of the oldest one not indexed.
CREATE TABLE IF NOT EXISTS current_commits (
    lastSeq      INTEGER PRIMARY KEY,
    committedAt  REAL NOT NULL
);
CREATE TRIGGER IF NOT EXISTS current_state_ai AFTER INSERT ON current_state
WHEN new.eventId != '' BEGIN
    INSERT INTO fts_pending (id) VALUES (new.id);
END;
CREATE TRIGGER IF NOT EXISTS current_state_ad AFTER DELETE ON current_state BEGIN
    INSERT INTO fts_pending (id) VALUES (old.id);
END;
CREATE TRIGGER IF NOT EXISTS current_state_au AFTER UPDATE ON current_state
WHEN old.name IS NOT new.name OR old.description IS NOT new.description
     OR old.message IS NOT new.message BEGIN
    INSERT INTO fts_pending (id) VALUES (new.id);
END;
"""

# columnsize=0: no per-row column sizes, one b-tree write less per indexed row (the catch-up
# thread spent about a sixth less CPU per alert; docs/performance.md). Only bm25() and other
# rank functions read them, and farm orders its matches by time. An index created before keeps
# its sizes.
FTS_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS alerts_current_fts USING fts5(
    name, description, message, columnsize=0);
CREATE TABLE IF NOT EXISTS fts_state (
    one          INTEGER PRIMARY KEY CHECK (one = 1),
    doneSeq      INTEGER NOT NULL     -- every fts_pending seq up to this one is indexed
);
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

# The layout before the split kept the current state and its index in farm.db.
OLD_CURRENT_OBJECTS = ("alerts_current_ai", "alerts_current_ad", "alerts_current_au")
MIGRATE_CURRENT = """
INSERT OR REPLACE INTO cur.current_state
    SELECT id, tenant, fingerprint, eventId, lastReceived, severity, status, name, description,
           message, duplicates, sentAt FROM main.alerts_current;
"""
# Old retention could delete a version's history row while the current state still showed it:
# its document goes back into history, where the current state now reads it.
MIGRATE_DOCS = """
INSERT OR IGNORE INTO main.alerts (eventId, fingerprint, tenant, lastReceived, severity, status,
                                   name, doc)
    SELECT eventId, fingerprint, tenant, lastReceived, severity, status, name, doc
    FROM main.alerts_current WHERE eventId != '';
"""

# The current state as readers know it (see the module's docstring); TEMP, since a view in one
# database file cannot read another.
CURRENT_VIEW = """
CREATE TEMP VIEW alerts_current AS
SELECT c.id, c.tenant, c.fingerprint, c.eventId, c.lastReceived, c.severity, c.status, c.name,
       c.description, c.message, c.duplicates, c.sentAt,
       CASE WHEN c.eventId = '' THEN '{}'
            ELSE json_set(h.doc, '$.lastReceived', c.lastReceived) END AS doc
FROM cur.current_state c LEFT JOIN main.alerts h ON h.eventId = c.eventId
"""


class StoreSchemaError(Exception):
    """The data folder holds a store this farm cannot use; str() says what to do."""


def current_path(path: Path) -> Path:
    """farm-current.db beside farm.db."""
    return path.with_name(f"{path.stem}-current{path.suffix}")


def fts_path(path: Path) -> Path:
    """farm-fts.db beside farm.db."""
    return path.with_name(f"{path.stem}-fts{path.suffix}")


def open_writable(path: Path, schema: str, synchronous: str = "FULL",
                  page_size: int | None = None) -> sqlite3.Connection:
    """One file of the store, for writing, with farm's pragmas and its schema created;
    `page_size` applies only to a file created now."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout=30000")
    if page_size is not None:
        db.execute(f"PRAGMA page_size={int(page_size)}")  # before WAL, which fixes it
    db.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before the indexer lets workers ack it, even across a power
    # loss. It costs one fsync per transaction and file.
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("PRAGMA recursive_triggers=ON")  # REPLACE fires delete triggers (FTS)
    db.executescript(schema)
    return db


def open_fts(path: Path) -> sqlite3.Connection:
    """farm-fts.db (beside farm.db at `path`) for writing; starts its progress at 0 when new
    (and writes nothing when not, so a start never waits for the index's lock)."""
    db = open_writable(fts_path(path), FTS_SCHEMA)
    if db.execute("SELECT count(*) FROM fts_state").fetchone()[0] == 0:
        db.execute("INSERT OR IGNORE INTO fts_state (one, doneSeq) VALUES (1, 0)")
    return db


def prepare(path: Path) -> None:
    """Create the store's three files, or bring an older layout to this one (once, at start).
    Raises StoreSchemaError for a store written by a newer farm."""
    db = sqlite3.connect(path, timeout=30, isolation_level=None) if path.exists() else None
    if db is not None:
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreSchemaError(
                    f"{path} has store schema {version}, newer than this farm's "
                    f"{SCHEMA_VERSION}: run the farm that wrote it, or point [farm] data_dir "
                    f"at a new folder")
            old = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                             "AND name = 'alerts_current'").fetchone()
        finally:
            db.close()
    open_writable(current_path(path), CURRENT_SCHEMA).close()
    open_fts(path).close()
    main = open_writable(path, HISTORY_SCHEMA + incident_store.SCHEMA,
                         page_size=HISTORY_PAGE_SIZE)
    try:
        if db is not None and old:
            _move_current_state(main, path)
        main.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    finally:
        main.close()


def _move_current_state(db: sqlite3.Connection, path: Path) -> None:
    """Copy an old farm.db's current state into farm-current.db (its triggers queue every row
    for the full-text index, which the indexer rebuilds in the background), then drop it from
    farm.db. Safe to repeat if interrupted: the copy replaces by id."""
    db.execute("ATTACH DATABASE ? AS cur", (str(current_path(path)),))
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute(MIGRATE_DOCS)
        db.execute(MIGRATE_CURRENT)
        for trigger in OLD_CURRENT_OBJECTS:
            db.execute(f"DROP TRIGGER IF EXISTS main.{trigger}")
        db.execute("DROP TABLE IF EXISTS main.alerts_current_fts")
        db.execute("DROP TABLE main.alerts_current")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    finally:
        db.execute("DETACH DATABASE cur")


def open_reader(path: Path, readonly: bool = True) -> sqlite3.Connection:
    """farm.db with farm-current.db (as `cur`) and farm-fts.db (as `fts`) attached, so every
    table is reachable by its plain name. A store of the old layout (everything in farm.db) is
    read as it is. This is the read API for anything outside the indexer (farm search, farm
    incidents, a console); raises sqlite3.Error when the store cannot be opened."""
    if readonly:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    else:
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.execute("PRAGMA busy_timeout=30000")
    parts = (("cur", current_path(path)), ("fts", fts_path(path)))
    if not all(part.exists() for _, part in parts):
        return db  # the old layout, not migrated yet: everything is in farm.db
    for alias, part in parts:
        target = f"file:{part}?mode=ro" if readonly else str(part)
        db.execute("ATTACH DATABASE ? AS " + alias, (target,))
    db.execute(CURRENT_VIEW)
    return db
