"""`farm search` and the console's reads (farm/console/): find alerts in whichever store is
configured, a page at a time, and read one fingerprint's current state, versions and kept raw
events.

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

from farm.alert import STATUSES, iso_ms
from farm.config import Config
from farm.correlation.store import links_index
from farm.sinks import raw as raw_events
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
    statuses: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    environment: str | None = None
    service: str | None = None
    before: str | None = None  # a page's cursor (Page.next_before): the alerts after it
    deadline_seconds: float | None = None  # a query running longer is stopped (SearchError)

    def cutoff(self) -> str | None:
        if self.since_seconds is None:
            return None
        return iso_ms(time.time() - self.since_seconds)


@dataclass
class Page:
    """One page of hits and the cursor of the next (None when this is the last)."""

    alerts: list[dict]
    next_before: str | None = None


def search(cfg: Config, query: Query) -> list[dict]:
    """Matching alerts, newest lastReceived first. Current-state hits carry `duplicates`: the
    full duplicates of that version since it was stored (not the farm's alerts_duplicate)."""
    return search_page(cfg, query).alerts


def search_page(cfg: Config, query: Query) -> Page:
    """`search`, a page at a time: `query.limit` hits after `query.before`, and the cursor of
    the next page. Raises SearchError when the store cannot be read or the query ran past its
    deadline."""
    if cfg.store.kind == "sqlite":
        return _search_sqlite(cfg, query)
    return _search_engine(cfg, query)


VERSIONS_SQL = ("SELECT doc FROM alerts WHERE fingerprint = ? AND tenant = ? "
                "ORDER BY rowid DESC LIMIT ?")


def versions(cfg: Config, tenant: str, fingerprint: str, limit: int,
             deadline_seconds: float | None = None) -> list[dict]:
    """One fingerprint's stored versions (history), newest first."""
    if cfg.store.kind == "sqlite":
        rows = sqlite_rows(cfg, VERSIONS_SQL, [fingerprint, tenant, limit], deadline_seconds)
        return [orjson.loads(doc) for (doc,) in rows]
    # receivedAt breaks ties: a version released from maintenance keeps its lastReceived
    body = {"size": limit, "sort": [{"lastReceived": "desc"}, {"receivedAt": "desc"}],
            "query": {"bool": {"filter": [{"term": {"tenant": tenant}},
                                          {"term": {"fingerprint": fingerprint}}]}}}
    return engine_search(cfg, f"{cfg.store.index_prefix}-alerts-2*", body)


def current_alert(cfg: Config, tenant: str, fingerprint: str) -> dict | None:
    """One fingerprint's current state (with `duplicates`), or None."""
    if cfg.store.kind == "sqlite":
        rows = sqlite_rows(cfg, "SELECT doc, duplicates FROM alerts_current WHERE tenant = ? "
                           "AND fingerprint = ? AND eventId != ''", [tenant, fingerprint])
        if not rows:
            return None
        return {**orjson.loads(rows[0][0]), "duplicates": rows[0][1]}
    body = {"size": 1, "query": {"bool": {"filter": [{"term": {"tenant": tenant}},
                                                     {"term": {"fingerprint": fingerprint}}],
                                          "must_not": [{"term": {"eventId": ""}}]}}}
    found = engine_search(cfg, current_index(cfg.store.index_prefix), body)
    return found[0] if found else None


def raw_payloads(cfg: Config, tenant: str, fingerprint: str, limit: int) -> list[dict]:
    """The raw events kept for one fingerprint ([store] raw_sample), newest first, each
    payload parsed back."""
    if cfg.store.kind == "sqlite":
        db = _open_sqlite(cfg)
        try:
            found = raw_events.read_sqlite(db, tenant, fingerprint, limit)
        except sqlite3.OperationalError as exc:
            raise _read_error(exc, None) from None
        finally:
            db.close()
    else:
        found = engine_search(cfg, raw_events.raw_index(cfg.store.index_prefix),
                              raw_events.engine_query(tenant, fingerprint, limit))
    for event in found:
        event["payload"] = orjson.loads(event["payload"])
    return found


def sqlite_rows(cfg: Config, sql: str, args: list, deadline_seconds: float | None = None
                ) -> list[tuple]:
    """Rows of one read of the SQLite store on a read-only connection of its own."""
    db = _open_sqlite(cfg)
    try:
        _bound(db, deadline_seconds)
        return db.execute(sql, args).fetchall()
    except sqlite3.OperationalError as exc:
        raise _read_error(exc, deadline_seconds) from None
    finally:
        db.close()


def _open_sqlite(cfg: Config) -> sqlite3.Connection:
    path = cfg.sqlite_path
    if not path.exists():
        raise SearchError(f"no store at {path} yet (has the farm indexed anything?)")
    return connect(path, readonly=True)


def _bound(db: sqlite3.Connection, seconds: float | None) -> None:
    """Interrupt any statement of `db` still running `seconds` from now."""
    if seconds is not None:
        end = time.monotonic() + seconds
        db.set_progress_handler(lambda: time.monotonic() > end, 10_000)


def _read_error(exc: sqlite3.OperationalError, deadline_seconds: float | None) -> SearchError:
    if "interrupted" in str(exc):
        return SearchError(f"the query ran longer than {deadline_seconds:g} s and was stopped: "
                           f"narrow it (a time range, a status, search words)")
    return SearchError(f"search failed: {exc}")


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


def _search_sqlite(cfg: Config, q: Query) -> Page:
    db = _open_sqlite(cfg)
    try:
        _bound(db, q.deadline_seconds)
        return _run_sqlite(db, q)
    except sqlite3.OperationalError as exc:
        raise _read_error(exc, q.deadline_seconds) from None
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


# Filters on fields the current-state table keeps only inside the document.
_DOC_FIELDS = (("providers", "providerType"), ("environment", "environment"),
               ("service", "service"))


def _sqlite_filters(q: Query, where: list[str], args: list) -> None:
    """The WHERE terms every SQLite search shares (alias `a`), appended in place."""
    if q.cutoff():
        where.append("a.lastReceived >= ?")
        args.append(q.cutoff())
    if q.severities:
        where.append(f"a.severity IN ({', '.join('?' * len(q.severities))})")
        args += list(q.severities)
    if len(q.statuses) == 1 and q.statuses[0] in STATUSES:
        # Written out, not bound, and with `=`: SQLite uses a partial index (the one of alerts
        # held in maintenance) only for a condition it can match to the index's when it plans.
        where.append(f"a.status = '{q.statuses[0]}'")
    elif q.statuses:
        where.append(f"a.status IN ({', '.join('?' * len(q.statuses))})")
        args += list(q.statuses)
    if q.tenant:
        # Unary + keeps SQLite off the (tenant, fingerprint) index: with it, a tenant's page
        # would sort every row of the tenant instead of walking lastReceived newest first.
        where.append("+a.tenant = ?")
        args.append(q.tenant)
    for attribute, field_name in _DOC_FIELDS:
        value = getattr(q, attribute)
        values = value if isinstance(value, tuple) else (value,) if value else ()
        if values:
            where.append(f"a.doc ->> '$.{field_name}' IN ({', '.join('?' * len(values))})")
            args += list(values)


def sqlite_select(db: sqlite3.Connection, q: Query) -> tuple[str, list]:
    """The SQL and arguments of one page of `q` (the cursor's key in the last column)."""
    where, args = [], []
    if q.history:
        table, select, key = "alerts a", "a.doc, NULL", "a.rowid"
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
        table, select, key = "alerts_current a", "a.doc, a.duplicates", "a.id"
        where.append("a.eventId != ''")
        if q.text:
            table += " JOIN alerts_current_fts f ON f.rowid = a.id"
            where.append("alerts_current_fts MATCH ?")
            args.append(fts_query(q.text))
    _sqlite_filters(q, where, args)
    if q.before:
        received, _, last_key = q.before.rpartition("|")
        where.append(f"(a.lastReceived, {key}) < (?, ?)")
        args += [received, int(last_key) if last_key.isdigit() else 0]
    if q.incident:
        table += (" JOIN incident_alerts l ON l.tenant = a.tenant "
                  "AND l.fingerprint = a.fingerprint")
        where.append("l.incident_id = ?")
        args.append(q.incident)
    sql = (f"SELECT {select}, a.lastReceived, {key} FROM {table} "
           f"{'WHERE ' + ' AND '.join(where) if where else ''} "
           f"ORDER BY a.lastReceived DESC, {key} DESC LIMIT ?")
    return sql, [*args, q.limit + 1]


def _run_sqlite(db: sqlite3.Connection, q: Query) -> Page:
    out, cursor = [], None
    for doc, duplicates, received, row_key in db.execute(*sqlite_select(db, q)):
        if len(out) == q.limit:
            return Page(out, cursor)
        if doc is None:
            continue  # a current version whose history row is still committing
        alert = orjson.loads(doc)
        if duplicates is not None:
            alert["duplicates"] = duplicates
        out.append(alert)
        cursor = f"{received}|{row_key}"
    return Page(out)


def _search_engine(cfg: Config, q: Query) -> Page:
    prefix = cfg.store.index_prefix
    index = f"{prefix}-alerts-2*" if q.history else current_index(prefix)
    must, filters = [], []
    if q.text:
        must.append({"simple_query_string": {"query": q.text, "default_operator": "and",
                                             "fields": ["name.text^2", "description",
                                                        "message"]}})
    if q.cutoff():
        filters.append({"range": {"lastReceived": {"gte": q.cutoff()}}})
    for field_name, values in (("severity", q.severities), ("status", q.statuses),
                               ("providerType", q.providers)):
        if values:
            filters.append({"terms": {field_name: list(values)}})
    for field_name, value in (("tenant", q.tenant), ("environment", q.environment),
                              ("service", q.service)):
        if value:
            filters.append({"term": {field_name: value}})
    if q.before:
        received, _, fingerprint = q.before.rpartition("|")
        filters.append({"bool": {"minimum_should_match": 1, "should": [
            {"range": {"lastReceived": {"lt": received}}},
            {"bool": {"filter": [{"term": {"lastReceived": received}},
                                 {"range": {"fingerprint": {"lt": fingerprint}}}]}}]}})
    if q.incident:
        links = engine_search(cfg, links_index(prefix), {
            "size": 10_000, "_source": ["fingerprint"],
            "query": {"term": {"incident_id": q.incident}}})
        filters.append({"terms": {"fingerprint": sorted({lk["fingerprint"] for lk in links})}})
    body = {"size": q.limit + 1, "sort": [{"lastReceived": "desc"}, {"fingerprint": "desc"}],
            "query": {"bool": {"must": must, "filter": filters,
                               "must_not": [{"term": {"eventId": ""}}]}}}
    if q.deadline_seconds is not None:
        body["timeout"] = f"{max(1, int(q.deadline_seconds * 1000))}ms"
    hits = engine_search(cfg, index, body)
    if len(hits) <= q.limit:
        return Page(hits)
    last = hits[q.limit - 1]
    return Page(hits[:q.limit], f"{last['lastReceived']}|{last['fingerprint']}")


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
