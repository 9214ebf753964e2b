"""`farm search`: find alerts in whichever store is configured.

Current state (one row per fingerprint) by default, history with `history=True`. Text is matched
against name, description and message: SQLite FTS5 on the store, or the engine's
simple_query_string. History in SQLite has an FTS5 index only with `[store] fts_history`; without
it the search scans every stored event and matches words the way FTS5 would (`TextMatcher`), so
a query finds the same events either way, only more slowly. The current state's FTS5 index
catches up in the background: `text_freshness` says how far behind it is (the CLI prints it
when a text search may miss recent changes).
"""

from __future__ import annotations

import re
import sqlite3
import time
import unicodedata
from dataclasses import dataclass

import orjson

from farm.alert import iso_ms
from farm.config import Config
from farm.correlation.store import links_index
from farm.sinks.engine_client import Engine, EngineError, current_index
from farm.sinks.sqlite import connect
from farm.sinks.sqlite_fts import Freshness, freshness

# A text search of the current state mentions the index's lag from this age on.
STALE_SECONDS = 1.0


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
    incident: str | None = None  # only the alerts linked to this incident

    def cutoff(self) -> str | None:
        if self.since_seconds is None:
            return None
        return iso_ms(time.time() - self.since_seconds)


def search(cfg: Config, query: Query) -> list[dict]:
    """Matching alerts, newest lastReceived first. Current-state hits carry `duplicates`: the
    full duplicates of that version since it was stored (not the farm's alerts_duplicate)."""
    if cfg.store.kind == "sqlite":
        return _search_sqlite(cfg, query)
    return _search_engine(cfg, query)


def fts_query(text: str) -> str:
    """User words -> an FTS5 query that ANDs them, so punctuation is never FTS syntax."""
    words = []
    for word in text.split():
        prefix = word.endswith("*")
        word = word.rstrip("*").replace('"', '""')
        if word:
            words.append(f'"{word}"' + ("*" if prefix else ""))
    return " ".join(words)


# A token as FTS5's default tokenizer (unicode61) sees it: a run of letters and digits.
_TOKEN = re.compile(r"[^\W_]+")


def _fold(text: str) -> str:
    """Lower case without diacritics, as unicode61 folds a token ("Café" -> "cafe")."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


class TextMatcher:
    """What `fts_query(text)` matches, for text that has no FTS5 index: every word of the
    query (a phrase of its tokens, a prefix when it ends with `*`) must occur within one of
    the columns; words are matched whole and case-insensitively."""

    def __init__(self, text: str):
        self.phrases = []
        self.tokens: set[str] = set()
        for word in text.split():
            tokens = _TOKEN.findall(_fold(word.rstrip("*")))
            if tokens:  # FTS5 ignores a phrase without tokens ("/")
                tail = "" if word.endswith("*") else " "
                self.phrases.append(" " + " ".join(tokens) + tail)
                self.tokens.update(tokens)

    def __call__(self, *columns: str | None) -> bool:
        if not self.phrases:
            return False
        folded = [_fold(c) for c in columns if c]
        # Most events lack some token even as a substring: reject those before tokenizing.
        if not all(any(t in f for f in folded) for t in self.tokens):
            return False
        texts = [" " + " ".join(_TOKEN.findall(f)) + " " for f in folded]
        return all(any(p in t for t in texts) for p in self.phrases)


def _search_sqlite(cfg: Config, q: Query) -> list[dict]:
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


def text_freshness(cfg: Config, query: Query) -> Freshness | None:
    """How far the full-text index of the current state is behind, when `query` searches it by
    text and the index is at least STALE_SECONDS behind; None otherwise (and for the engine,
    whose refresh interval is its own)."""
    if cfg.store.kind != "sqlite" or not query.text or query.history:
        return None
    if not cfg.sqlite_path.exists():
        return None
    db = connect(cfg.sqlite_path, readonly=True)
    try:
        attached = {row[1] for row in db.execute("PRAGMA database_list")}
        if not {"cur", "fts"} <= attached:
            return None  # a store of the old layout indexes in the same transaction
        state = freshness(db, current="cur.", fts="fts.")
    except sqlite3.Error:
        return None
    finally:
        db.close()
    return state if state.pending and state.lag_seconds >= STALE_SECONDS else None


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
                args.append(fts_query(q.text))
            else:  # history full-text search is opt-in ([store] fts_history): scan instead
                db.create_function("farm_text_match", 3, TextMatcher(q.text),
                                   deterministic=True)
                where.append("farm_text_match(a.name, a.doc ->> '$.description', "
                             "a.doc ->> '$.message')")
    else:
        table, select = "alerts_current a", "a.doc, a.duplicates"
        where.append("a.eventId != ''")
        if q.text:
            table += " JOIN alerts_current_fts f ON f.rowid = a.id"
            where.append("alerts_current_fts MATCH ?")
            args.append(fts_query(q.text))
    if q.cutoff():
        where.append("a.lastReceived >= ?")
        args.append(q.cutoff())
    if q.severities:
        where.append(f"a.severity IN ({', '.join('?' * len(q.severities))})")
        args += list(q.severities)
    if q.tenant:
        where.append("a.tenant = ?")
        args.append(q.tenant)
    if q.incident:
        table += (" JOIN incident_alerts l ON l.tenant = a.tenant "
                  "AND l.fingerprint = a.fingerprint")
        where.append("l.incident_id = ?")
        args.append(q.incident)
    sql = (f"SELECT {select} FROM {table} {'WHERE ' + ' AND '.join(where) if where else ''} "
           f"ORDER BY a.lastReceived DESC LIMIT ?")
    out = []
    for doc, duplicates in db.execute(sql, [*args, q.limit]):
        if doc is None:
            continue  # a current version whose history row is still committing
        alert = orjson.loads(doc)
        if duplicates is not None:
            alert["duplicates"] = duplicates
        out.append(alert)
    return out


def _search_engine(cfg: Config, q: Query) -> list[dict]:
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
    if q.incident:
        links = engine_search(cfg, links_index(prefix), {
            "size": 10_000, "_source": ["fingerprint"],
            "query": {"term": {"incident_id": q.incident}}})
        filters.append({"terms": {"fingerprint": sorted({lk["fingerprint"] for lk in links})}})
    body = {"size": q.limit, "sort": [{"lastReceived": "desc"}],
            "query": {"bool": {"must": must, "filter": filters,
                               "must_not": [{"term": {"eventId": ""}}]}}}
    return engine_search(cfg, index, body)


def engine_search(cfg: Config, index: str, body: dict) -> list[dict]:
    """The `_source` of every hit of one search of the engine; SearchError when it fails."""
    engine = Engine(cfg.store)
    try:
        _, answer = engine.request("POST", f"/{index}/_search?ignore_unavailable=true",
                                   body=body)
    except EngineError as exc:
        raise SearchError(str(exc)) from None
    finally:
        engine.close()
    return [hit["_source"] for hit in answer["hits"]["hits"]]
