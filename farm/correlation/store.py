"""Incidents in the stores: the SQLite schema and rows, the engine's documents, and reading them
back for the CLI (`farm incidents`, `farm search --incident`).

Writes are idempotent and never go back in time: an incident row or document is replaced only
by a snapshot whose `version` (raised by every Redis change) is not older, and a link
(incident, fingerprint) is written once with the eventId that made it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    id              TEXT PRIMARY KEY,
    tenant          TEXT NOT NULL,
    rule            TEXT NOT NULL,
    group_key       TEXT NOT NULL,
    name            TEXT NOT NULL,
    status          TEXT NOT NULL,
    severity        TEXT,
    alerts_count    INTEGER NOT NULL,
    is_visible      INTEGER NOT NULL,
    is_candidate    INTEGER NOT NULL,
    start_time      TEXT,
    last_seen_time  TEXT,
    same_incident_in_the_past_id TEXT,
    version         INTEGER NOT NULL,   -- orders snapshots: an older one never wins
    doc             TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS incident_alerts (
    incident_id     TEXT NOT NULL,
    tenant          TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    eventId         TEXT NOT NULL,      -- the stored event that linked the fingerprint
    linkedAt        TEXT NOT NULL,
    PRIMARY KEY (incident_id, fingerprint)
);
CREATE VIRTUAL TABLE IF NOT EXISTS incidents_fts USING fts5(
    name, content='incidents', content_rowid='rowid');
CREATE TRIGGER IF NOT EXISTS incidents_ai AFTER INSERT ON incidents BEGIN
    INSERT INTO incidents_fts(rowid, name) VALUES (new.rowid, new.name);
END;
CREATE TRIGGER IF NOT EXISTS incidents_ad AFTER DELETE ON incidents BEGIN
    INSERT INTO incidents_fts(incidents_fts, rowid, name) VALUES ('delete', old.rowid, old.name);
END;
CREATE TRIGGER IF NOT EXISTS incidents_au AFTER UPDATE ON incidents
WHEN old.name IS NOT new.name BEGIN
    INSERT INTO incidents_fts(incidents_fts, rowid, name) VALUES ('delete', old.rowid, old.name);
    INSERT INTO incidents_fts(rowid, name) VALUES (new.rowid, new.name);
END;
"""

UPSERT_INCIDENT = """
INSERT INTO incidents (id, tenant, rule, group_key, name, status, severity, alerts_count,
                       is_visible, is_candidate, start_time, last_seen_time,
                       same_incident_in_the_past_id, version, doc)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    name = excluded.name, status = excluded.status, severity = excluded.severity,
    alerts_count = excluded.alerts_count, is_visible = excluded.is_visible,
    is_candidate = excluded.is_candidate, start_time = excluded.start_time,
    last_seen_time = excluded.last_seen_time, version = excluded.version, doc = excluded.doc
WHERE excluded.version >= incidents.version
"""

INSERT_LINK = """
INSERT OR IGNORE INTO incident_alerts (incident_id, tenant, fingerprint, eventId, linkedAt)
VALUES (?, ?, ?, ?, ?)
"""


def sqlite_rows(tenant: str, incidents) -> tuple[list[tuple], list[tuple]]:
    """(incident rows, link rows) of one chunk's Correlated (None: none)."""
    if not incidents:
        return [], []
    rows = [(s["id"], s["tenant"], s["rule"], s["rule_fingerprint"], s["name"], s["status"],
             s["severity"], s["alerts_count"], int(s["is_visible"]), int(s["is_candidate"]),
             s["start_time"], s["last_seen_time"], s["same_incident_in_the_past_id"] or None,
             s["version"], orjson.dumps(s).decode()) for s in incidents.snapshots]
    links = [(incident, tenant, fp, event_id, at) for incident, fp, event_id, at
             in incidents.links]
    return rows, links


def write_sqlite(db: sqlite3.Connection, rows: list[tuple], links: list[tuple]) -> None:
    """Inside the indexer's transaction."""
    if rows:
        db.executemany(UPSERT_INCIDENT, rows)
    if links:
        db.executemany(INSERT_LINK, links)


# -- the engine ----------------------------------------------------------------------------

INCIDENT_SCRIPT_ID = "farm-incident-state"
# A snapshot replaces the document unless the document is newer (a redelivered old batch).
INCIDENT_SCRIPT = """
if (ctx._source.version != null && params.doc.version < ctx._source.version) {
  ctx.op = 'none'; return;
}
ctx._source.clear();
ctx._source.putAll(params.doc);
"""


def setup_engine(engine, prefix: str, replicas: int, template: Path) -> None:
    """Install the incidents template (the shipped file `template`) and script, and create
    both indices (idempotent)."""
    body = orjson.loads(template.read_bytes())
    body["index_patterns"] = [incidents_index(prefix), links_index(prefix)]
    body["template"]["settings"]["number_of_replicas"] = replicas
    engine.request("PUT", f"/_index_template/{prefix}-incidents", body=body)
    engine.request("PUT", f"/_scripts/{INCIDENT_SCRIPT_ID}",
                   body={"script": {"lang": "painless", "source": INCIDENT_SCRIPT}})
    for index in (incidents_index(prefix), links_index(prefix)):
        engine.request("PUT", f"/{index}", ok=(200, 201, 400))  # 400: exists


def incidents_index(prefix: str) -> str:
    return f"{prefix}-incidents"


def links_index(prefix: str) -> str:
    return f"{prefix}-incident-alerts"


ENGINE_DATES = frozenset({"start_time", "last_seen_time", "end_time", "creation_time"})


def engine_actions(prefix: str, tenant: str, incidents) -> list[bytes]:
    """NDJSON items (action line + body line, each ending in a newline) of one chunk's
    incidents: a scripted upsert per snapshot, an index per link (`_id` incident/fingerprint,
    the same document every time it is written)."""
    if not incidents:
        return []
    out = []
    for snap in incidents.snapshots:
        action = orjson.dumps({"update": {"_index": incidents_index(prefix), "_id": snap["id"],
                                          "retry_on_conflict": 5}})
        # '' is the Redis state's "not yet" (an open incident's end_time); a date field of
        # the engine refuses it, so the document leaves the field out.
        doc = {k: v for k, v in snap.items() if v != "" or k not in ENGINE_DATES}
        body = orjson.dumps({"scripted_upsert": True, "upsert": {},
                             "script": {"id": INCIDENT_SCRIPT_ID, "params": {"doc": doc}}})
        out.append(action + b"\n" + body + b"\n")
    for incident, fp, event_id, at in incidents.links:
        action = orjson.dumps({"index": {"_index": links_index(prefix),
                                         "_id": f"{incident}/{fp}"}})
        body = orjson.dumps({"incident_id": incident, "tenant": tenant, "fingerprint": fp,
                             "eventId": event_id, "linkedAt": at})
        out.append(action + b"\n" + body + b"\n")
    return out


# -- reading back (CLI) --------------------------------------------------------------------
