"""Raw payload sampling (`[store] raw_sample`): which raw provider events are kept as they
arrived, and how each store keeps them (SQLite tables alerts_raw and alerts_raw_fingerprints;
the engine index `<index_prefix>-raw`).

The choice depends only on the batch id and the event's position, so a redelivered batch keeps
exactly the events it kept the first time, and writing them again replaces them (the id is
`<batch id>/<position>`). A kept event carries the eventIds and fingerprints of the alerts it
became: the console finds an alert's raw payloads by fingerprint.
"""

from __future__ import annotations

import math
import random
import sqlite3

import orjson
import xxhash

from farm.alert import json_default

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts_raw (
    id           TEXT PRIMARY KEY,    -- <batch id>/<position of the event in its batch>
    batchId      TEXT NOT NULL,
    position     INTEGER NOT NULL,
    tenant       TEXT NOT NULL,
    provider     TEXT NOT NULL,
    receivedAt   TEXT NOT NULL,
    sentAt       REAL NOT NULL,       -- retention ([store] raw_retention_days)
    eventIds     TEXT NOT NULL,       -- JSON list: the alerts this event became
    payload      TEXT NOT NULL        -- the event as JSON, as the provider sent it
);
CREATE TABLE IF NOT EXISTS alerts_raw_fingerprints (
    tenant       TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    raw_id       TEXT NOT NULL,
    sentAt       REAL NOT NULL,
    PRIMARY KEY (tenant, fingerprint, raw_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alerts_raw_sent ON alerts_raw (sentAt);
"""

RAW_MAPPING = {"dynamic": False, "properties": {
    "id": {"type": "keyword"}, "batchId": {"type": "keyword"}, "position": {"type": "integer"},
    "tenant": {"type": "keyword"}, "provider": {"type": "keyword"},
    "receivedAt": {"type": "date"}, "sentAt": {"type": "double"},
    "eventIds": {"type": "keyword"}, "fingerprints": {"type": "keyword"},
    "payload": {"type": "text", "index": False}}}


def raw_index(prefix: str) -> str:
    return f"{prefix}-raw"


class RawSampler:
    """Picks about `fraction` of a batch's event positions, the same ones for the same batch id:
    the gaps between picks are geometric draws from a generator seeded by the id, so a batch
    costs one seed and one draw per kept event, not one per event."""

    def __init__(self, fraction: float):
        self.fraction = fraction
        self._log_miss = math.log1p(-fraction) if 0 < fraction < 1 else 0.0

    def positions(self, batch_id: str, count: int) -> set[int] | range:
        if self.fraction <= 0 or count == 0:
            return set()
        if self.fraction >= 1:
            return range(count)
        draw = random.Random(xxhash.xxh64_intdigest(batch_id.encode())).random
        kept: set[int] = set()
        position = -1
        while True:
            position += 1 + int(math.log(1.0 - draw()) / self._log_miss)
            if position >= count:
                return kept
            kept.add(position)


def raw_event(batch, position: int, event: object, alerts: list[dict], received: str
              ) -> dict | None:
    """The stored form of one kept event (None when it cannot be written as JSON)."""
    try:
        payload = orjson.dumps(event, default=json_default,
                               option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return None
    return {"id": f"{batch.id}/{position}", "batchId": batch.id, "position": position,
            "tenant": batch.tenant, "provider": batch.provider, "receivedAt": received,
            "sentAt": batch.sent_at, "eventIds": [a["eventId"] for a in alerts],
            "fingerprints": sorted({a["fingerprint"] for a in alerts}), "payload": payload}


# -- SQLite ---------------------------------------------------------------------------------

def write_sqlite(db: sqlite3.Connection, events: list[dict]) -> None:
    """Inside the indexer's transaction: the kept events and their fingerprint links."""
    db.executemany(
        "INSERT OR REPLACE INTO alerts_raw (id, batchId, position, tenant, provider, receivedAt,"
        " sentAt, eventIds, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(e["id"], e["batchId"], e["position"], e["tenant"], e["provider"], e["receivedAt"],
          e["sentAt"], orjson.dumps(e["eventIds"]).decode(), e["payload"]) for e in events])
    db.executemany(
        "INSERT OR REPLACE INTO alerts_raw_fingerprints (tenant, fingerprint, raw_id, sentAt) "
        "VALUES (?, ?, ?, ?)",
        [(e["tenant"], fp, e["id"], e["sentAt"]) for e in events for fp in e["fingerprints"]])


def expire_sqlite(db: sqlite3.Connection, cutoff: float) -> int:
    """Inside a transaction: delete kept events sent before `cutoff`; returns rows deleted."""
    deleted = db.execute("DELETE FROM alerts_raw WHERE sentAt < ?", (cutoff,)).rowcount
    db.execute("DELETE FROM alerts_raw_fingerprints WHERE sentAt < ?", (cutoff,))
    return deleted


READ_SQL = ("SELECT r.id, r.batchId, r.position, r.provider, r.receivedAt, r.eventIds, r.payload "
            "FROM alerts_raw_fingerprints f JOIN alerts_raw r ON r.id = f.raw_id "
            "WHERE f.tenant = ? AND f.fingerprint = ? ORDER BY f.sentAt DESC LIMIT ?")


def read_sqlite(db: sqlite3.Connection, tenant: str, fingerprint: str, limit: int
                ) -> list[dict]:
    """The kept events of one fingerprint, newest first (none on a store without the table)."""
    try:
        rows = db.execute(READ_SQL, (tenant, fingerprint, limit)).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    return [{"id": i, "batchId": b, "position": p, "provider": prov, "receivedAt": at,
             "eventIds": orjson.loads(ids), "payload": payload}
            for i, b, p, prov, at, ids, payload in rows]


# -- Elasticsearch / OpenSearch -------------------------------------------------------------

def engine_items(prefix: str, events: list[dict]) -> list[bytes]:
    """NDJSON items (action line + document line) indexing the kept events."""
    index = raw_index(prefix)
    return [orjson.dumps({"index": {"_index": index, "_id": e["id"]}}) + b"\n"
            + orjson.dumps(e) + b"\n" for e in events]


def setup_engine(engine, prefix: str, replicas: int) -> None:
    """Create `<prefix>-raw` with its mapping (idempotent: an existing index is kept)."""
    body = {"settings": {"number_of_replicas": replicas}, "mappings": RAW_MAPPING}
    engine.request("PUT", f"/{raw_index(prefix)}", body=body, ok=(200, 201, 400))


def expire_engine(engine, prefix: str, cutoff: float) -> None:
    query = {"query": {"range": {"sentAt": {"lt": cutoff}}}}
    engine.request("POST", f"/{raw_index(prefix)}/_delete_by_query?conflicts=proceed"
                   f"&ignore_unavailable=true", body=query, ok=None)


def engine_query(tenant: str, fingerprint: str, limit: int) -> dict:
    """The search body of one fingerprint's kept events, newest first."""
    return {"size": limit, "sort": [{"sentAt": "desc"}],
            "query": {"bool": {"filter": [{"term": {"tenant": tenant}},
                                          {"term": {"fingerprints": fingerprint}}]}}}


def retention_cutoff(store, now: float) -> float | None:
    """Kept events sent before this are deleted; None keeps them."""
    days = store.raw_retention_days or store.retention_days
    return now - days * 86_400 if days else None
