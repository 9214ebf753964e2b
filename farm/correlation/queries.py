"""Reading incidents back from either store, for `farm incidents` and `farm search --incident`
(farm/correlation/store.py writes them)."""

from __future__ import annotations

import sqlite3

import orjson

from farm.config import Config
from farm.correlation.store import incidents_index, links_index
from farm.search import SearchError, engine_search, fts_query
from farm.sinks.sqlite import connect


def list_incidents(cfg: Config, status: str | None = None, tenant: str | None = None,
                   everything: bool = False, text: str = "", limit: int = 20,
                   before: str | None = None) -> list[dict]:
    """Stored incidents, most recently seen first; only visible ones unless `everything`;
    only those last seen before `before` (a page's cursor: the last one's last_seen_time).
    Raises farm.search.SearchError when the store cannot be read."""
    if cfg.store.kind == "sqlite":
        where, args = [], []
        table = "incidents i"
        if text:
            table += " JOIN incidents_fts f ON f.rowid = i.rowid"
            where.append("incidents_fts MATCH ?")
            args.append(fts_query(text))
        for column, value in (("i.status", status), ("i.tenant", tenant)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        if not everything:
            where.append("i.is_visible = 1")
        if before:
            where.append("i.last_seen_time < ?")
            args.append(before)
        sql = (f"SELECT i.doc FROM {table} {'WHERE ' + ' AND '.join(where) if where else ''} "
               f"ORDER BY i.last_seen_time DESC LIMIT ?")
        return [orjson.loads(row[0]) for row in _sqlite_rows(cfg, sql, [*args, limit])]
    filters: list[dict] = [{"term": {"status": status}}] if status else []
    if tenant:
        filters.append({"term": {"tenant": tenant}})
    if not everything:
        filters.append({"term": {"is_visible": True}})
    if before:
        filters.append({"range": {"last_seen_time": {"lt": before}}})
    must = [{"simple_query_string": {"query": text, "fields": ["name.text"],
                                     "default_operator": "and"}}] if text else []
    body = {"size": limit, "sort": [{"last_seen_time": "desc"}],
            "query": {"bool": {"must": must, "filter": filters}}}
    return engine_search(cfg, incidents_index(cfg.store.index_prefix), body)


def get_incident(cfg: Config, incident_id: str) -> tuple[dict | None, list[dict]]:
    """(the stored incident or None, its links [{fingerprint, eventId, linkedAt}])."""
    if cfg.store.kind == "sqlite":
        found = _sqlite_rows(cfg, "SELECT doc FROM incidents WHERE id = ?", [incident_id])
        links = _sqlite_rows(cfg, "SELECT fingerprint, eventId, linkedAt FROM incident_alerts "
                             "WHERE incident_id = ? ORDER BY linkedAt, fingerprint",
                             [incident_id])
        return (orjson.loads(found[0][0]) if found else None,
                [{"fingerprint": f, "eventId": e, "linkedAt": at} for f, e, at in links])
    prefix = cfg.store.index_prefix
    docs = engine_search(cfg, incidents_index(prefix),
                          {"size": 1, "query": {"term": {"id": incident_id}}})
    links = engine_search(cfg, links_index(prefix),
                           {"size": 10_000, "sort": [{"linkedAt": "asc"}],
                            "query": {"term": {"incident_id": incident_id}}})
    return (docs[0] if docs else None, links)


def _sqlite_rows(cfg: Config, sql: str, args: list) -> list[tuple]:
    path = cfg.sqlite_path
    if not path.exists():
        raise SearchError(f"no store at {path} yet (has the farm indexed anything?)")
    db = connect(path, readonly=True)
    try:
        return db.execute(sql, args).fetchall()
    except sqlite3.OperationalError as exc:
        raise SearchError(f"cannot read incidents: {exc}") from None
    finally:
        db.close()
