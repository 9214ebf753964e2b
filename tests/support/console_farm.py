"""A real farm with data for the console's tests: generic alerts, one alert in three versions
whose text is hostile HTML, enrichment, an incident, and a dead letter. Every raw event is
kept ([store] raw_sample = 1)."""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import redis as redis_lib

from farm.config import Config, load
from farm.redis_keys import Keys
from farm.sinks.engine_client import Engine
from farm.wire import encode_batch
from tests.support.batches import alertmanager_webhook
from tests.support.farms import FarmProcess, write_config

REPO = Path(__file__).resolve().parents[2]
HOSTILE = ("<script>window.__pwned = 1</script> zanzibar checkout latency "
           "<img src=x onerror=alert(1)>")
HOSTILE_FINGERPRINT = "console-hostile"
GENERIC_ALERTS = 120

CORRELATION = """
[[rule]]
name = "Critical per service"
condition = 'severity == "critical" && service == "postgres"'
grouping_criteria = ["service"]
threshold = 1
incident_name_template = "Critical on {{ alert.service }}"
"""


@dataclass
class ConsoleFarm:
    farm: FarmProcess
    cfg: Config
    prefix: str

    @property
    def url(self) -> str:
        return f"http://{self.farm.http}"


def console_config(tmp: Path, redis_url: str, prefix: str, console: str = "",
                   store: str = "") -> Path:
    """The config file of a console test farm (correlation, enrichment, raw_sample 1; SQLite
    unless `store` holds other [store] lines)."""
    (tmp / "correlation.toml").write_text(CORRELATION)
    shutil.copy(REPO / "configs/enrichment/example.toml", tmp / "enrichment.toml")
    shutil.copy(REPO / "configs/enrichment/service_owners.csv", tmp / "service_owners.csv")
    extra = (f"[store]\nraw_sample = 1.0\ncommit_ms = 20\n{store}\n"
             f'[correlation]\nrules = "{tmp / "correlation.toml"}"\n'
             f'[enrichment]\nfiles = ["{tmp / "enrichment.toml"}"]\n{console}')
    return write_config(tmp / "farm.toml", tmp / "data", redis_url, prefix=prefix, extra=extra)


def hostile_alert(status: str) -> dict:
    return {"name": "Checkout <b>latency</b>", "status": status, "severity": "critical",
            "service": "checkout", "environment": "production", "description": HOSTILE,
            "fingerprint": HOSTILE_FINGERPRINT, "labels": {"team": "<i>payments</i>"}}


def fill(farm: FarmProcess, redis_url: str, prefix: str) -> None:
    """Push the console's data one step at a time (each version after the previous is
    stored, so their order is the order sent) and wait until the farm drained it."""
    client = redis_lib.Redis.from_url(redis_url)
    queue = Keys(prefix).queue("normal")
    pushed = 0
    try:
        events = [alertmanager_webhook(n, "resolved" if n % 4 == 0 else "firing")
                  for n in range(GENERIC_ALERTS)]
        client.lpush(queue, encode_batch(events, "prometheus"))
        pushed += len(events)
        db_alerts = [{"name": f"Database down {n}", "severity": "critical", "status": "firing",
                      "service": "postgres", "environment": "production",
                      "description": f"replica {n} is not answering", "fingerprint": f"db-{n}"}
                     for n in range(3)]
        client.lpush(queue, encode_batch(db_alerts, "keep"))
        pushed += len(db_alerts)
        client.lpush(queue, b"this is not a batch")  # a dead letter
        farm.wait_drained(expected_received=pushed)
        for status in ("firing", "resolved", "firing"):
            client.lpush(queue, encode_batch([hostile_alert(status)], "keep",
                                             sent_at=time.time()))
            pushed += 1
            farm.wait_drained(expected_received=pushed)
    finally:
        client.close()


def start_console_farm(tmp: Path, redis_url: str, console: str = "",
                       engine_url: str | None = None) -> ConsoleFarm:
    """A started farm holding the console's data (in the engine at engine_url when given,
    refreshed so that searches see it); the caller stops `farm`."""
    prefix = f"console{uuid.uuid4().hex[:8]}"
    store = (f'kind = "elasticsearch"\nurl = "{engine_url}"\nindex_prefix = "{prefix}"\n'
             f"replicas = 0\n") if engine_url else ""
    path = console_config(tmp, redis_url, prefix, console, store)
    farm = FarmProcess(path, workers=2).start()
    try:
        fill(farm, redis_url, prefix)
        cfg = load(path, env={})
        if engine_url:
            engine = Engine(cfg.store)
            engine.request("POST", f"/{prefix}-*/_refresh")
            engine.close()
    except BaseException:
        farm.kill()
        raise
    return ConsoleFarm(farm, cfg, prefix)


def drop_engine_indices(started: ConsoleFarm) -> None:
    engine = Engine(started.cfg.store)
    engine.request("DELETE", f"/{started.prefix}-*", ok=(200, 404))
    engine.close()
