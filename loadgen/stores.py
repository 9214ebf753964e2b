"""Reading back what a run left in the farm's store, for the verifier.

`StoreReader` is the whole interface the verifier needs: the history documents of some batches,
each with its fingerprint and the time its transaction committed. `SqliteReader` implements it
over the embedded store (farm/sinks/sqlite.py: table `alerts`, and `commits`, where a history
row with rowid R was committed at the committedAt of the first commit whose lastRowid >= R). An
Elasticsearch/OpenSearch reader, `EngineReader`, implements the same two methods (a `prefix`
query or a `terms` query on batchId, with search_after).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple, Protocol

import orjson

from farm.config import Config


class StoreError(Exception):
    """The store cannot be read; str() is one line."""


class StoredRow(NamedTuple):
    event_id: str
    fingerprint: str
    committed_at: float | None     # None when the store does not know
    doc: dict | None = None        # the stored document, when asked for


class StoredIncident(NamedTuple):
    """An incident as the store holds it, with its alert links [(fingerprint, eventId)]."""

    id: str
    group_key: str
    status: str
    alerts_count: int
    is_visible: bool
    past_id: str            # same_incident_in_the_past_id, "" when none
    links: list


class StoreReader(Protocol):
    def history(self, prefix: str | None = None, batch_ids: Iterable[str] = (),
                docs: bool = False) -> Iterator[StoredRow]:
        """Every history document whose eventId starts with `prefix` (one run's batches share
        it), or whose batch is one of `batch_ids`, each at most once; with `docs`, each with
        its document."""

    def incidents(self, tenant: str, rule: str, group_prefix: str) -> list[StoredIncident]:
        """Every incident of `rule` for `tenant` whose group key starts with `group_prefix`,
        with its links."""

    def close(self) -> None: ...


def reader_for(cfg: Config) -> StoreReader:
    """The reader of the store a farm config names. Raises StoreError."""
    if cfg.store.kind == "sqlite":
        return SqliteReader(cfg.sqlite_path)
    return EngineReader(cfg)


class EngineReader:
    """History documents from `<index_prefix>-alerts-*` daily indices. The engine keeps no
    commit time per document: committed_at is None (the verifier then takes latency from farm's
    own histogram, loadgen/latency.py)."""

    commit_times = False
    PAGE = 5000

    def __init__(self, cfg: Config):
        # Deferred: elastic_transport (and the aiohttp it pulls in) is heavy, and only a farm
        # that stores into Elasticsearch/OpenSearch needs it.
        from farm.sinks.engine_client import Engine, EngineError

        self._error = EngineError
        self.engine = Engine(cfg.store)
        self.pattern = f"{cfg.store.index_prefix}-alerts-2*"
        self.index_prefix = cfg.store.index_prefix
        try:
            self.engine.request("GET", "/_cluster/health")
        except EngineError as exc:
            raise StoreError(str(exc)) from None

    def history(self, prefix: str | None = None, batch_ids: Iterable[str] = (),
                docs: bool = False) -> Iterator[StoredRow]:
        try:  # what the farm committed must be searchable now, not after refresh_interval
            self.engine.request("POST", f"/{self.pattern}/_refresh?ignore_unavailable=true")
        except self._error as exc:
            raise StoreError(str(exc)) from None
        if prefix is not None:
            queries = [{"prefix": {"eventId": prefix}}]
        else:
            ids = sorted(set(batch_ids))
            queries = [{"terms": {"batchId": ids[i:i + 1000]}} for i in range(0, len(ids), 1000)]
        for query in queries:
            yield from self._pages(query, docs)

    def _pages(self, query: dict, docs: bool) -> Iterator[StoredRow]:
        source = True if docs else ["fingerprint"]
        for hit in self._hits(self.pattern, query, [{"eventId": "asc"}], source):
            doc = hit["_source"]
            yield StoredRow(hit["_id"], doc.get("fingerprint", ""), None, doc if docs else None)

    def incidents(self, tenant: str, rule: str, group_prefix: str) -> list[StoredIncident]:
        prefix = self.index_prefix
        try:
            self.engine.request("POST", f"/{prefix}-incidents,{prefix}-incident-alerts/_refresh"
                                        f"?ignore_unavailable=true")
        except self._error as exc:
            raise StoreError(str(exc)) from None
        found = {}
        query = {"bool": {"filter": [{"term": {"tenant": tenant}}, {"term": {"rule": rule}},
                                     {"prefix": {"rule_fingerprint": group_prefix}}]}}
        for doc in self._all(f"{prefix}-incidents", query, "id"):
            found[doc["id"]] = StoredIncident(
                doc["id"], doc["rule_fingerprint"], doc["status"], doc["alerts_count"],
                bool(doc["is_visible"]), doc.get("same_incident_in_the_past_id") or "", [])
        ids = sorted(found)
        for at in range(0, len(ids), 1000):
            query = {"terms": {"incident_id": ids[at:at + 1000]}}
            for link in self._all(f"{prefix}-incident-alerts", query, "eventId"):
                found[link["incident_id"]].links.append((link["fingerprint"], link["eventId"]))
        return list(found.values())

    def _all(self, index: str, query: dict, key: str) -> Iterator[dict]:
        """Every document of `index` matching `query`, in pages sorted by `key`."""
        for hit in self._hits(index, query, [{key: "asc"}, {"_id": "asc"}], True):
            yield hit["_source"]

    def _hits(self, index: str, query: dict, sort: list, source) -> Iterator[dict]:
        """Every hit of a search, page by page (search_after on `sort`, which must be total)."""
        after = None
        while True:
            body = {"size": self.PAGE, "query": query, "sort": sort, "_source": source}
            if after is not None:
                body["search_after"] = after
            try:
                _, answer = self.engine.request(
                    "POST", f"/{index}/_search?ignore_unavailable=true", body=body)
            except self._error as exc:
                raise StoreError(f"reading the engine failed: {exc}") from None
            hits = answer["hits"]["hits"]
            yield from hits
            if len(hits) < self.PAGE:
                return
            after = hits[-1]["sort"]

    def close(self) -> None:
        self.engine.close()


class SqliteReader:
    commit_times = True

    def __init__(self, path: Path):
        path = Path(path)
        if not path.exists():
            raise StoreError(f"no SQLite store at {path}: is [store] path (or [farm] data_dir) "
                             f"the farm's?")
        try:
            self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
            self.db.execute("PRAGMA busy_timeout=30000")
            self.db.execute("SELECT 1 FROM alerts LIMIT 1").fetchall()
            self.db.execute("SELECT 1 FROM commits LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the SQLite store at {path}: {exc}") from None

    def history(self, prefix: str | None = None, batch_ids: Iterable[str] = (),
                docs: bool = False) -> Iterator[StoredRow]:
        columns = "rowid, eventId, fingerprint" + (", doc" if docs else "")
        try:
            if prefix is not None:
                # eventIds are hex and ':'; '~' sorts after all of them: one index range.
                rows = self.db.execute(
                    f"SELECT {columns} FROM alerts WHERE eventId >= ? AND eventId < ? "
                    f"ORDER BY rowid", (prefix, prefix + "~"))
                yield from self._with_commit_times(rows)
                return
            found = []
            for batch in set(batch_ids):
                found += self.db.execute(
                    f"SELECT {columns} FROM alerts WHERE eventId > ? AND eventId < ?",
                    (batch + ":", batch + ";")).fetchall()
            found.sort()
            yield from self._with_commit_times(iter(found))
        except sqlite3.Error as exc:
            raise StoreError(f"reading the SQLite store failed: {exc}") from None

    def _with_commit_times(self, rows: Iterator) -> Iterator[StoredRow]:
        """rows (rowid, eventId, fingerprint) in rowid order -> StoredRow with commit time,
        walking the commits log alongside (lastRowid grows with txn)."""
        commits = None
        commit = None
        for rowid, event_id, fingerprint, *doc in rows:
            if commits is None:
                commits = self.db.execute(
                    "SELECT committedAt, lastRowid FROM commits WHERE txn >= ? ORDER BY txn",
                    (self._first_commit_covering(rowid),))
                commit = commits.fetchone()
            while commit is not None and commit[1] < rowid:
                commit = commits.fetchone()
            yield StoredRow(event_id, fingerprint, commit[0] if commit is not None else None,
                            orjson.loads(doc[0]) if doc else None)

    def _first_commit_covering(self, rowid: int) -> int:
        """The txn of the first commit whose lastRowid >= rowid (binary search on txn, since
        lastRowid never decreases), so the walk need not scan the whole log."""
        low, high = self.db.execute("SELECT min(txn), max(txn) FROM commits").fetchone()
        if low is None:
            return 0
        while low < high:
            mid = (low + high) // 2
            row = self.db.execute("SELECT txn, lastRowid FROM commits WHERE txn >= ? "
                                  "ORDER BY txn LIMIT 1", (mid,)).fetchone()
            if row[1] >= rowid:
                high = row[0] if row[0] < high else mid
            else:
                low = row[0] + 1
        return low

    def incidents(self, tenant: str, rule: str, group_prefix: str) -> list[StoredIncident]:
        try:
            found = {row[0]: StoredIncident(row[0], row[1], row[2], row[3], bool(row[4]),
                                            row[5] or "", [])
                     for row in self.db.execute(
                         "SELECT id, group_key, status, alerts_count, is_visible, "
                         "same_incident_in_the_past_id FROM incidents WHERE tenant = ? AND "
                         "rule = ? AND group_key >= ? AND group_key < ?",
                         (tenant, rule, group_prefix, group_prefix + "~"))}
            for incident, fp, event_id in self.db.execute(
                    "SELECT l.incident_id, l.fingerprint, l.eventId FROM incident_alerts l "
                    "JOIN incidents i ON i.id = l.incident_id WHERE i.tenant = ? AND "
                    "i.rule = ? AND i.group_key >= ? AND i.group_key < ?",
                    (tenant, rule, group_prefix, group_prefix + "~")):
                found[incident].links.append((fp, event_id))
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []   # a farm that never correlated anything
            raise StoreError(f"reading the SQLite store's incidents failed: {exc}") from None
        except sqlite3.Error as exc:
            raise StoreError(f"reading the SQLite store's incidents failed: {exc}") from None
        return list(found.values())

    def close(self) -> None:
        self.db.close()
