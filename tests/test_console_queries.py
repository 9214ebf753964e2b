"""The console's SQLite reads walk an index in the order they return rows (EXPLAIN QUERY PLAN),
so a page costs the same on a store of millions of alerts as on an empty one."""

from __future__ import annotations

import pytest

from farm.search import VERSIONS_SQL, Query, sqlite_select
from farm.sinks import raw
from farm.sinks.sqlite import SqliteWriter, connect


@pytest.fixture
def db(tmp_path):
    SqliteWriter(tmp_path / "farm.db").close()  # the writer creates the schema and indexes
    reader = connect(tmp_path / "farm.db", readonly=True)
    yield reader
    reader.close()


def plan(db, sql: str, args) -> str:
    return " | ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, args))


@pytest.mark.parametrize("query", [
    Query(limit=50),
    Query(limit=50, before="2026-11-30T10:00:00.000Z|1234"),
    Query(limit=50, statuses=("firing",), severities=("critical", "high"), tenant="default"),
    Query(limit=50, since_seconds=3600, providers=("grafana",), environment="production",
          service="checkout"),
])
def test_the_alert_table_reads_the_received_index_without_sorting(db, query):
    found = plan(db, *sqlite_select(db, query))
    assert "current_state_received" in found and "TEMP B-TREE" not in found, found


def test_one_alerts_versions_and_raw_events_read_by_index(db):
    versions = plan(db, VERSIONS_SQL, ["fp", "default", 50])
    assert "alerts_fingerprint (fingerprint=?)" in versions and "TEMP B-TREE" not in versions
    kept = plan(db, raw.READ_SQL, ["default", "fp", 5])
    assert "PRIMARY KEY (tenant=? AND fingerprint=?)" in kept and "SCAN" not in kept
