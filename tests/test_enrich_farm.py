"""A real farm (supervisor, workers, indexer) with dedup rules and enrichment rule files from its
config, every provider, into SQLite, on a real Redis."""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import orjson

from farm.sinks.sqlite_schema import open_reader
from farm.wire import encode_batch
from tests.support.farms import FarmProcess, write_config

GOLDEN = Path(__file__).parent / "providers"
EXAMPLE = Path(__file__).resolve().parent.parent / "configs" / "enrichment"


def golden_event(provider: str, case: str) -> object:
    return orjson.loads((GOLDEN / provider / f"{case}.json").read_bytes())


def test_farm_applies_dedup_and_enrichment_rules_from_its_config(tmp_path, redis, redis_url):
    shutil.copytree(EXAMPLE, tmp_path / "enrichment")
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url, extra="""
[enrichment]
files = ["enrichment/example.toml"]

[[dedup.rules]]
name = "zabbix as keep does it"
provider = "zabbix"
fingerprint_fields = ["name"]
""")
    sends = [("prometheus", "spec_example"), ("prometheus", "spec_example"),
             ("prometheus", "resolved"), ("grafana", "spec_example"),
             ("datadog", "spec_example"), ("zabbix", "spec_example"),
             ("zabbix", "spec_example"), ("keep", "minimal")]
    start = time.time() - 60  # current state older than [store] retention_days is deleted
    # One worker: the repeats must be decided after their originals for the ids below.
    with FarmProcess(config, workers=1) as farm:
        for n, (provider, case) in enumerate(sends):
            redis.lpush("farm:q:normal", encode_batch([golden_event(provider, case)], provider,
                                                      batch_id=f"batch{n}",
                                                      sent_at=start + n))
        doc = farm.wait_drained(expected_received=len(sends))
    counters = doc["counters"]
    assert counters["alerts_received"] == 8 and counters["alerts_dead"] == 0
    assert counters["alerts_duplicate"] == 2  # the repeated Prometheus and Zabbix notifications

    db = open_reader(tmp_path / "data" / "farm.db")  # the current state is in its own file
    docs = {row[0]: orjson.loads(row[1]) for row in db.execute("SELECT eventId, doc FROM alerts")}
    assert set(docs) == {"batch0:0", "batch2:0", "batch3:0", "batch4:0", "batch5:0", "batch7:0"}
    firing, resolved = docs["batch0:0"], docs["batch2:0"]
    assert (firing["host"], firing["port"], firing["datacenter"]) == ("db-07", "9100", "db")
    assert firing["tier"] == "2"  # environment "staging"
    assert firing["owner"] == "dba-team" and firing["slack_channel"] == "#dba-nonprod"
    assert resolved["status"] == "resolved" and resolved["fingerprint"] == firing["fingerprint"]
    assert docs["batch3:0"]["tier"] == "1"  # Grafana "prod"
    zabbix = docs["batch5:0"]
    assert zabbix["team"] == "platform"  # the pre-extraction rule read the raw tags
    assert zabbix["fingerprint"] == hashlib.sha256(b"High CPU utilization on app-12").hexdigest()
    current = dict(db.execute("SELECT fingerprint, status FROM alerts_current"))
    assert current[firing["fingerprint"]] == "resolved"
