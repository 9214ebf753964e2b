"""`farm search` over the SQLite store and over a real engine."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from farm.alert import iso_ms
from farm.cli import main
from farm.config import load
from farm.search import Query, search
from farm.sinks.sqlite import SqliteEncoder, SqliteWriter
from tests.support.engine_store import EngineStore

NOW = iso_ms(time.time())
OLD = iso_ms(time.time() - 7200)


def alerts():
    def a(eid, fp, name, severity, description, seen):
        return ({"eventId": eid, "fingerprint": fp, "name": name, "status": "firing",
                 "severity": severity, "lastReceived": seen, "description": description,
                 "message": None, "tenant": "t1", "labels": {}}, "n")
    return [a("b:0", "fp0", "DiskFull", "critical", "disk /var is 97% full", NOW),
            a("b:1", "fp1", "HighLatency", "warning", "p99 latency 2.3s on checkout", NOW),
            a("b:2", "fp2", "DiskFull", "warning", "disk /data is 91% full (old)", OLD)]


def sqlite_cfg(tmp_path):
    cfg = load(None, env={"FARM_FARM_DATA_DIR": str(tmp_path)})
    writer = SqliteWriter(cfg.sqlite_path)
    writer.write([SqliteEncoder().encode("t1", time.time(), alerts())])
    writer.close()
    return cfg


def names(hits):
    return sorted(h["eventId"] for h in hits)


def test_sqlite_search_by_text_time_and_severity(tmp_path):
    cfg = sqlite_cfg(tmp_path)
    assert names(search(cfg, Query("disk full"))) == ["b:0", "b:2"]
    assert names(search(cfg, Query("disk", since_seconds=3600))) == ["b:0"]
    assert names(search(cfg, Query("", severities=("warning",)))) == ["b:1", "b:2"]
    assert names(search(cfg, Query('lat* "unbalanced'))) == []
    assert names(search(cfg, Query("latency", history=True))) == ["b:1"]
    assert search(cfg, Query(""))[0]["duplicates"] == 0


def history_store(tmp_path, fts_history: bool):
    """The alerts() plus events whose words are tricky to match, in a store with or without
    the history full-text index."""
    cfg = load(None, env={"FARM_FARM_DATA_DIR": str(tmp_path)})
    writer = SqliteWriter(cfg.sqlite_path, fts_history=fts_history)
    template = alerts()[0][0]
    texts = [("disk_full", None, "Café au lait"), ("DISKS", "FULL", None),
             ("x-y", "z", "naïve"), ("Disk", None, "full"), ("latency2", "p99", "")]
    extra = [({**template, "eventId": f"x:{n}", "fingerprint": f"x{n}", "name": name,
               "description": description, "message": message}, "n")
             for n, (name, description, message) in enumerate(texts)]
    writer.write([SqliteEncoder().encode("t1", time.time(), alerts() + extra)])
    writer.close()
    return cfg


HISTORY_QUERIES = ["disk full", "DISK", "disk*", "disks", "full disk", "cafe", "CAFÉ", "x-y",
                   "y x", "/", "/ disk", "97", "lat*", "latency", "var 97", "isk", "naive"]


def test_history_search_without_fts_matches_words_as_fts_does(tmp_path):
    scanned = history_store(tmp_path / "scan", fts_history=False)
    indexed = history_store(tmp_path / "fts", fts_history=True)
    assert names(search(scanned, Query("disk full", history=True))) == \
        ["b:0", "b:2", "x:0", "x:3"]
    for text in HISTORY_QUERIES:
        assert names(search(scanned, Query(text, history=True, limit=100))) == \
            names(search(indexed, Query(text, history=True, limit=100))), text


def test_search_command_prints_json_and_reports_bad_input(tmp_path):
    cfg = sqlite_cfg(tmp_path)
    config = tmp_path / "farm.toml"
    config.write_text(f'[farm]\ndata_dir = "{cfg.data_dir}"\n')
    runner = CliRunner()
    result = runner.invoke(main, ["search", "checkout", "--json", "--config", str(config)])
    assert result.exit_code == 0
    assert [h["name"] for h in json.loads(result.output)] == ["HighLatency"]
    result = runner.invoke(main, ["search", "--since", "soon", "--config", str(config)])
    assert result.exit_code == 2
    assert "--since: 'soon' is not a duration" in result.output


@pytest.mark.engine
def test_engine_search_by_text_time_and_severity(engine_url):
    store = EngineStore(engine_url)
    try:
        store.write(alerts(), sent_at=time.time())
        cfg = store.cfg
        assert names(search(cfg, Query("disk full"))) == ["b:0", "b:2"]
        assert names(search(cfg, Query("disk", since_seconds=3600))) == ["b:0"]
        assert names(search(cfg, Query("", severities=("warning",)))) == ["b:1", "b:2"]
        assert names(search(cfg, Query("latency", history=True))) == ["b:1"]
    finally:
        store.close()
