"""A worker pipeline with correlation rules, on a real Redis, writing into a real SQLite store:
what the correlation tests drive."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import msgpack
import orjson

from farm import config
from farm.pipeline import Pipeline, unpack_record
from farm.redis_keys import Keys
from farm.sinks.sqlite import SqliteWriter
from farm.sinks.sqlite_schema import open_reader
from farm.wire import encode_batch

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
_ids = itertools.count()


def alert(fp: str, status: str = "firing", severity: str = "warning", **fields) -> dict:
    """A Keep generic alert with its own fingerprint."""
    return {"name": fields.pop("name", f"alert {fp}"), "fingerprint": fp, "status": status,
            "severity": severity, **fields}


class CorrelationRun:
    """Sends batches through Pipeline.process and commits their records with SqliteWriter."""

    def __init__(self, tmp_path: Path, redis, rules: str, prefix: str = "corr",
                 extra: str = "", keys: Keys | None = None):
        rule_file = tmp_path / "correlation.toml"
        rule_file.write_text(rules)
        cfg_file = tmp_path / "farm.toml"
        cfg_file.write_text(f'[farm]\ndata_dir = "{tmp_path / "data"}"\n'
                            f'[correlation]\nrules = "{rule_file}"\n{extra}')
        self.cfg = config.load(cfg_file, env={})
        self.redis = redis
        self.keys = keys or Keys(prefix)
        self.pipeline = Pipeline(self.cfg, redis, self.keys)
        self.db_path = tmp_path / "store.db"
        self.writer = SqliteWriter(self.db_path)
        self.now = START

    def send(self, *alerts: dict, after: float = 1.0, batch_id: str | None = None,
             tenant: str = "default", commit: bool = True):
        """One batch, `after` seconds after the previous one; returns its Outcome."""
        out = self.pipeline.process(self.batch(*alerts, after=after, batch_id=batch_id,
                                               tenant=tenant))
        if commit:
            self.commit(out)
        return out

    def batch(self, *alerts: dict, after: float = 1.0, batch_id: str | None = None,
              tenant: str = "default") -> bytes:
        """One encoded batch, `after` seconds after the previous one."""
        self.now += after
        return encode_batch(list(alerts), "keep", tenant=tenant, sent_at=self.now,
                            batch_id=batch_id or f"batch{next(_ids)}")

    def by_hand(self, command: str, incident_id: str, after: float = 1.0):
        """A control batch changing one incident (`farm incidents resolve|acknowledge|confirm`
        sends the same), processed and committed; returns its Outcome."""
        self.now += after
        out = self.pipeline.process(msgpack.packb({
            "v": 1, "id": f"hand{next(_ids)}", "tenant": "default", "provider": "keep",
            "sent_at": self.now, "events": [], "control": {command: incident_id}}))
        self.commit(out)
        return out

    def commit(self, out) -> None:
        self.writer.write([unpack_record(r)[2] for r in out.records])

    def incidents(self) -> list[dict]:
        """Every stored incident, oldest first."""
        with sqlite3.connect(self.db_path) as db:
            rows = db.execute("SELECT doc FROM incidents").fetchall()
        docs = [orjson.loads(r[0]) for r in rows]
        return sorted(docs, key=lambda d: (d["creation_time"], d["running_number"]))

    def members(self, incident_id: str) -> set[str]:
        with sqlite3.connect(self.db_path) as db:
            rows = db.execute("SELECT fingerprint FROM incident_alerts WHERE incident_id = ?",
                              (incident_id,)).fetchall()
        return {r[0] for r in rows}

    def current(self, fingerprint: str) -> dict:
        db = open_reader(self.db_path)  # the current state is in a file of its own
        try:
            row = db.execute("SELECT doc FROM alerts_current WHERE fingerprint = ?",
                             (fingerprint,)).fetchone()
        finally:
            db.close()
        return orjson.loads(row[0])

    def close(self) -> None:
        self.writer.close()
