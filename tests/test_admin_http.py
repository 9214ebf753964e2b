"""The supervisor's /metrics, /healthz and /status, and the shipped Prometheus and Grafana files
that refer to its metrics."""

from __future__ import annotations

import ast
import json
import re
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from farm.cli import main
from farm.ingest.metrics import REFUSAL_REASONS
from tests.support.batches import alertmanager_webhook, push_batches
from tests.support.farms import FarmProcess, write_config
from tests.support.ports import free_port, wait_healthy
from tests.support.waiting import wait_until

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def metric_names(text: str) -> set[str]:
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines()
            if line and not line.startswith("#")}


def referenced_metrics() -> set[str]:
    text = (CONFIGS / "prometheus" / "farm-alerts.yml").read_text()
    text += (CONFIGS / "grafana" / "farm-dashboard.json").read_text()
    return set(re.findall(r"\b(farm_[a-z_]+)", text))


def test_metrics_health_and_status_are_served(tmp_path, redis, redis_url):
    # A notify receiver that never answers: the sender's metrics exist all the same.
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url, ingest=True,
                          extra=f'[notify]\nurl = "http://127.0.0.1:{free_port()}/hook"\n')
    with FarmProcess(config, workers=2) as farm:
        push_batches(redis, 10, 20)
        wait_healthy(f"http://{farm.ingest_http}")
        response = httpx.post(f"http://{farm.ingest_http}/alerts/event/prometheus",
                              json=alertmanager_webhook(999))
        assert response.status_code == 202
        refused = httpx.post(f"http://{farm.ingest_http}/alerts/event/prometheus",
                             json=alertmanager_webhook(998), headers={"X-API-KEY": "wrong"})
        assert refused.status_code == 401
        farm.wait_drained(expected_received=201)
        status, body = farm.get("/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"
        deadline = time.monotonic() + 60  # the sender's metrics appear once it has started
        while "farm_notify_deliveries" not in farm.get("/metrics")[1] and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        status, body = farm.get("/metrics")
        assert status == 200
        names = metric_names(body)
        assert 'farm_alerts_total{decision="new",provider="prometheus"} 201.0' in body
        assert "farm_stat_alerts_received_total 201.0" in body
        assert 'farm_queue_depth{lane="critical"} 0.0' in body
        # Every refusal reason has a series from the gateway's start, refused yet or not.
        refused = re.findall(r'farm_ingest_refused_total\{[^}]*reason="(\w+)"', body)
        assert set(REFUSAL_REASONS) <= set(refused)
        assert ('farm_ingest_refused_total{provider="-",reason="too_deep",tenant="-"} 0.0'
                in body)
        # Every metric the shipped alert rules and dashboard use exists (bucket/total suffixes
        # are the exposition's).
        missing = {m for m in referenced_metrics()
                   if not any(n == m or n.startswith(m + "_") for n in names)}
        assert not missing
        doc = farm.status()
        assert [w["id"] for w in doc["workers"]] == ["test.0", "test.1"]
        assert {"critical", "normal"} == set(doc["queues"])
        assert doc["counters"]["alerts_received"] == 201
        assert [p["alive"] for p in doc["ingest"]["processes"]] == [True, True]
        # `farm status` (the table) lists the gateway processes as --json does.
        table = CliRunner().invoke(main, ["status", "--config", str(config)],
                                   env={"COLUMNS": "200"})
        assert table.exit_code == 0, table.output
        rows = {line.split()[1]: line for line in table.output.splitlines()
                if line.startswith("│")}
        for gateway in doc["ingest"]["processes"]:
            assert gateway["id"] in rows, table.output
            assert f"│ {gateway['pid']}" in rows[gateway["id"]]
        assert f"ingest gateway on http://{farm.ingest_http}" in table.output
        assert "notify" in rows and "notifications to http://127.0.0.1:" in table.output


def test_a_restarted_worker_reuses_its_metrics_files(tmp_path, redis, redis_url):
    import os
    import signal

    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url)
    metrics = tmp_path / "data" / "metrics"

    def files_of(worker: str) -> list[str]:
        # Only that worker's: the other processes may write their first files at any time.
        return sorted(f for f in os.listdir(metrics) if f.endswith(f"_{worker}.db"))

    with FarmProcess(config, workers=2) as farm:
        push_batches(redis, 4, 5)
        farm.wait_drained(expected_received=20)
        # A worker writes its files when it first counts something: kill one that has.
        worker = next(w for w in ("worker-0", "worker-1") if files_of(w))
        files = files_of(worker)
        assert f"counter_{worker}.db" in files
        slot = int(worker.rpartition("-")[2])
        os.kill(farm.children()[worker], signal.SIGKILL)
        wait_until(lambda: farm.status()["workers"][slot]["alive"]
                   and farm.status()["workers"][slot]["restarts"] >= 1,
                   f"{worker} to be restarted", 300, 0.1)
        push_batches(redis, 4, 5)
        farm.wait_drained(expected_received=40)
        restarted = str(farm.children()[worker])
        assert set(files) <= set(files_of(worker))  # the same files, written on
        assert not [f for f in os.listdir(metrics) if restarted in f]  # none per process id


def test_every_reason_the_gateway_refuses_with_gets_a_series_at_start():
    """REFUSAL_REASONS lists each reason the gateway's code refuses with (Refused(status,
    detail, reason) and the metrics-only refusals counted by _count)."""
    used = set()
    for path in (Path(__file__).resolve().parents[1] / "farm" / "ingest").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            position = {"Refused": 2, "_count": 5}.get(node.func.id)
            if position is not None and len(node.args) > position and \
                    isinstance(node.args[position], ast.Constant):  # not a passed-on reason
                used.add(node.args[position].value)
    assert "too_large" in used and "overloaded" in used
    assert used <= set(REFUSAL_REASONS)
