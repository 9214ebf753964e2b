"""The current state's full-text index, kept off the commit path.

The current-state transaction only queues the ids of rows whose text changed (`fts_pending`,
by trigger); `FtsCatchUp`, a thread of the indexer, reads the queue and the rows' text from
farm-current.db and writes them into farm-fts.db in its own transactions, recording how far it
got (`fts_state.doneSeq`) in the same transaction. The current-state writer deletes queue entries
up to that point later, in one of its own transactions. A crash anywhere repeats some indexing,
never skips it: an entry leaves the queue only after the index holding it is committed.

`freshness()` says how far behind the index is: how many queued changes it has not indexed and
the age of the oldest commit that queued one (`farm search` prints it when it is behind; the
indexer exports it as `farm_fts_lag_seconds` and `farm_fts_pending`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from farm.sinks.sqlite_schema import current_path, open_fts

log = logging.getLogger("farm.indexer")

BATCH = 20_000  # queue entries per index transaction
# Shortest pause between passes: fewer, larger index transactions (each leaves an FTS5 segment
# to merge later, and an fsync) for a lag of a fraction of a second.
PAUSE_SECONDS = 0.25

PENDING = """
SELECT p.seq, p.id, c.eventId, c.name, c.description, c.message
FROM fts_pending p LEFT JOIN current_state c ON c.id = p.id
WHERE p.seq > ? ORDER BY p.seq LIMIT ?
"""


@dataclass
class Freshness:
    pending: int          # queued changes not yet in the index
    lag_seconds: float    # age of the oldest commit whose changes are not all indexed

    def describe(self) -> str:
        return (f"the full-text index is {self.lag_seconds:.1f}s behind the current state "
                f"({self.pending} changed alerts not yet searchable by text)")


def freshness(db: sqlite3.Connection, done: int | None = None, current: str = "",
              fts: str = "") -> Freshness:
    """How far the index is behind, read through `db` (table prefixes `current`/`fts`, e.g.
    "cur." on a reader with both attached). `done`: the index's progress when known."""
    if done is None:
        done = db.execute(f"SELECT doneSeq FROM {fts}fts_state").fetchone()[0]
    pending = db.execute(f"SELECT count(*) FROM {current}fts_pending WHERE seq > ?",
                         (done,)).fetchone()[0]
    if not pending:
        return Freshness(0, 0.0)
    oldest = db.execute(f"SELECT min(committedAt) FROM {current}current_commits "
                        f"WHERE lastSeq > ?", (done,)).fetchone()[0]
    return Freshness(pending, max(0.0, time.time() - oldest) if oldest else 0.0)


class FtsCatchUp(threading.Thread):
    """Indexes queued current-state changes into farm-fts.db, woken after every current-state
    commit (and every half second), at most every PAUSE_SECONDS. `done` is its progress, for
    the writer to trim the queue; `report` receives its Freshness after every pass."""

    def __init__(self, path: Path, report: Callable[[Freshness], None] | None = None):
        super().__init__(name="farm-sqlite-fts", daemon=True)
        self.fts = open_fts(path)
        self.current = sqlite3.connect(current_path(path), timeout=30, isolation_level=None,
                                       check_same_thread=False)
        self.current.execute("PRAGMA busy_timeout=30000")
        self.done: int = self.fts.execute("SELECT doneSeq FROM fts_state").fetchone()[0]
        self.report = report
        self.wake = threading.Event()
        self.stopped = threading.Event()
        self.lock = threading.Lock()  # one pass at a time: the thread's, or a caller's

    def run(self) -> None:
        while not self.stopped.is_set():
            self.wake.wait(0.5)
            self.wake.clear()
            try:
                self.catch_up()
            except sqlite3.Error as exc:
                log.warning("full-text indexing failed, retrying: %s", exc)
                self.stopped.wait(1.0)
            self.stopped.wait(PAUSE_SECONDS)

    def catch_up(self, deadline: float | None = None) -> None:
        """Index everything queued now (until `deadline`, a monotonic time, if given)."""
        with self.lock:
            while self.step() == BATCH and (deadline is None or time.monotonic() < deadline):
                pass
            if self.report is not None:
                self.report(freshness(self.current, self.done))

    def step(self) -> int:
        """One transaction of the index; returns the queue entries it covered."""
        rows = self.current.execute(PENDING, (self.done, BATCH)).fetchall()
        if not rows:
            return 0
        latest = {row[1]: row for row in rows}  # the row as it is now, once per id
        gone = [(rid,) for rid, (_, _, event_id, *_text) in latest.items() if not event_id]
        text = [(rid, *row[3:]) for rid, row in latest.items() if row[2]]
        db = self.fts
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("DELETE FROM alerts_current_fts WHERE rowid = ?", gone)
            db.executemany("INSERT OR REPLACE INTO alerts_current_fts "
                           "(rowid, name, description, message) VALUES (?, ?, ?, ?)", text)
            db.execute("UPDATE fts_state SET doneSeq = ?", (rows[-1][0],))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.done = rows[-1][0]
        return len(rows)

    def stop(self, catch_up_seconds: float = 10.0) -> None:
        """Stop after indexing what is queued (for at most `catch_up_seconds`: the rest waits
        for the next start, which resumes where this one stopped)."""
        self.stopped.set()
        self.wake.set()
        if self.is_alive():
            self.join()
        try:
            self.catch_up(time.monotonic() + catch_up_seconds)
        except sqlite3.Error as exc:
            log.warning("full-text indexing stopped behind: %s", exc)
        self.fts.close()
        self.current.close()
