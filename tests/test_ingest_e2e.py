"""From webhook to store: a real farm (supervisor, workers, indexer, SQLite) fed only through a
gateway process, as the tools in docs/ingest.md are."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from farm.ingest.auth import hash_key
from farm.providers import normalizer_for
from tests.support.farms import FarmProcess, write_config
from tests.support.gateways import ACME_KEY, post
from tests.support.payloads import ALERTMANAGER, DATADOG, GRAFANA, KEEP_ALERTS, ZABBIX
from tests.support.ports import free_port, wait_healthy

CASES = [("prometheus", ALERTMANAGER, 1), ("grafana", GRAFANA, 1), ("datadog", DATADOG, 1),
         ("zabbix", ZABBIX, 1), ("keep", KEEP_ALERTS, 2)]


@pytest.mark.slow
def test_webhooks_through_the_gateway_end_up_in_the_store(tmp_path, redis, redis_url):
    cases = [case for case in CASES if normalizer_for(case[0]) is not None]
    port = free_port()
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url, extra=f"""
[ingest]
processes = 2
http = "127.0.0.1:{port}"
[ingest.keys]
acme = ["{hash_key(ACME_KEY)}"]
""")
    # The gateway runs under the farm's own supervisor, as `farm start` runs it.
    with FarmProcess(config, workers=2) as farm:
        url = f"http://{farm.ingest_http}"
        wait_healthy(url)
        status = farm.status()
        assert [p["alive"] for p in status["ingest"]["processes"]] == [True, True]
        for provider, payload, _n in cases:
            response = post(f"{url}/alerts/event/{provider}", payload)
            assert response.status_code == 202, response.text
        curl_user = post(f"{url}/alerts/event", {"name": "from curl", "id": "c-1",
                                                 "severity": "info"})
        assert curl_user.status_code == 202
        expected = sum(n for _p, _payload, n in cases) + 1
        doc = farm.wait_drained(expected_received=expected)
    assert doc["counters"]["alerts_dead"] == 0
    db = sqlite3.connect(tmp_path / "data" / "farm.db")
    rows = [(tenant, json.loads(body)) for tenant, body in
            db.execute("SELECT tenant, doc FROM alerts")]
    assert len(rows) == expected
    assert {tenant for tenant, _doc in rows} == {"acme"}
    by_provider = {}
    for _tenant, alert in rows:
        by_provider.setdefault(alert["providerType"], []).append(alert)
    for provider, _payload, n in cases:
        assert len(by_provider[provider]) == n + (1 if provider == "keep" else 0)
    assert "DiskAlmostFull" in {a["name"] for a in by_provider.get("prometheus", [])}
    assert "from curl" in {a["name"] for a in by_provider["keep"]}


def test_the_supervisor_restarts_a_killed_gateway_and_drains_gateways_first(tmp_path, redis,
                                                                         redis_url):
    import os
    import signal

    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url, ingest=True)
    farm = FarmProcess(config, workers=1).start()
    try:
        url = f"http://{farm.ingest_http}"
        wait_healthy(url)
        victim = farm.status()["ingest"]["processes"][0]["pid"]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            gateway = farm.status()["ingest"]["processes"][0]
            if gateway["alive"] and gateway["restarts"] == 1:
                break
            assert time.monotonic() < deadline, gateway
            time.sleep(0.1)
        response = post(f"{url}/alerts/event/prometheus", ALERTMANAGER, key=None)
        assert response.status_code == 202, response.text
        farm.wait_drained(expected_received=1)
        assert farm.terminate() == 0
    finally:
        farm.kill()
