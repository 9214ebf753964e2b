"""`farm search`: find alerts in whichever store is configured.

Current state (one row per fingerprint) by default, history with `history=True`. Text is matched
against name, description and message: SQLite FTS5 on the store, or the engine's
simple_query_string.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

import orjson

from farm.alert import iso_ms


class SearchError(Exception):
    """The search cannot run; str() says why and what to do."""


@dataclass
class Query:
    text: str = ""
    since_seconds: float | None = None
    severities: tuple[str, ...] = ()
    tenant: str | None = None
    history: bool = False
    limit: int = 20

    def cutoff(self) -> str | None:
        if self.since_seconds is None:
            return None
        return iso_ms(time.time() - self.since_seconds)


def search(cfg, query: Query) -> list[dict]:
    """Matching alerts, newest lastReceived first; current-state hits carry `duplicates`."""
    if cfg.store.kind == "sqlite":
        return _search_sqlite(cfg, query)
    return _search_engine(cfg, query)


def _fts_query(text: str) -> str:
    """User words -> an FTS5 query that ANDs them, so punctuation is never FTS syntax."""
    words = []
    for word in text.split():
        prefix = word.endswith("*")
        word = word.rstrip("*").replace('"', '""')
        if word:
            words.append(f'"{word}"' + ("*" if prefix else ""))
    return " ".join(words)


def _search_sqlite(cfg, q: Query) -> list[dict]:
    from farm.sinks.sqlite import connect

    path = cfg.sqlite_path
    if not path.exists():
        raise SearchError(f"no store at {path} yet (has the farm indexed anything?)")
    db = connect(path, readonly=True)
    try:
        return _run_sqlite(db, q)
    except sqlite3.OperationalError as exc:
        raise SearchError(f"search failed: {exc}") from None
    finally:
        db.close()


def _run_sqlite(db: sqlite3.Connection, q: Query) -> list[dict]:
    where, args = [], []
    if q.history:
        table, select = "alerts a", "a.doc, NULL"
        if q.text:
            has_fts = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'alerts_fts'") \
                .fetchone()
            if has_fts:
                table += " JOIN alerts_fts f ON f.rowid = a.rowid"
                where.append("alerts_fts MATCH ?")
                args.append(_fts_query(q.text))
            else:  # history full-text search is opt-in ([store] fts_history): scan instead
                like = f"%{q.text}%"
                where.append("(a.name LIKE ? OR a.doc ->> '$.description' LIKE ? "
                             "OR a.doc ->> '$.message' LIKE ?)")
                args += [like, like, like]
    else:
        table, select = "alerts_current a", "a.doc, a.duplicates"
        where.append("a.eventId != ''")
        if q.text:
            table += " JOIN alerts_current_fts f ON f.rowid = a.id"
            where.append("alerts_current_fts MATCH ?")
            args.append(_fts_query(q.text))
    if q.cutoff():
        where.append("a.lastReceived >= ?")
        args.append(q.cutoff())
    if q.severities:
        where.append(f"a.severity IN ({', '.join('?' * len(q.severities))})")
        args += list(q.severities)
    if q.tenant:
        where.append("a.tenant = ?")
        args.append(q.tenant)
    sql = (f"SELECT {select} FROM {table} {'WHERE ' + ' AND '.join(where) if where else ''} "
           f"ORDER BY a.lastReceived DESC LIMIT ?")
    out = []
    for doc, duplicates in db.execute(sql, [*args, q.limit]):
        alert = orjson.loads(doc)
        if duplicates is not None:
            alert["duplicates"] = duplicates
        out.append(alert)
    return out


def _search_engine(cfg, q: Query) -> list[dict]:
    from farm.sinks.engine import Engine, EngineError, current_index

    prefix = cfg.store.index_prefix
    index = f"{prefix}-alerts-2*" if q.history else current_index(prefix)
    must, filters = [], []
    if q.text:
        must.append({"simple_query_string": {"query": q.text, "default_operator": "and",
                                             "fields": ["name.text^2", "description",
                                                        "message"]}})
    if q.cutoff():
        filters.append({"range": {"lastReceived": {"gte": q.cutoff()}}})
    if q.severities:
        filters.append({"terms": {"severity": list(q.severities)}})
    if q.tenant:
        filters.append({"term": {"tenant": q.tenant}})
    body = {"size": q.limit, "sort": [{"lastReceived": "desc"}],
            "query": {"bool": {"must": must, "filter": filters,
                               "must_not": [{"term": {"eventId": ""}}]}}}
    engine = Engine(cfg.store)
    try:
        _, answer = engine.request("POST", f"/{index}/_search?ignore_unavailable=true",
                                   body=body)
    except EngineError as exc:
        raise SearchError(str(exc)) from None
    finally:
        engine.close()
    return [hit["_source"] for hit in answer["hits"]["hits"]]
