"""With no [redis] url, a farm runs its own Redis (append-only) in its data folder."""

from __future__ import annotations

import subprocess
import sys

import psutil
import redis as redis_lib

from farm.redis_keys import Keys
from farm.wire import encode_batch
from tests.support.batches import alertmanager_webhook
from tests.support.farms import FarmProcess
from tests.support.ports import free_port

FARM = [sys.executable, "-m", "farm.cli"]


def config_without_redis(tmp_path):
    path = tmp_path / "farm.toml"
    path.write_text(f"""
[farm]
data_dir = "{tmp_path / 'data'}"
node_id = "solo"
[supervisor]
http = "127.0.0.1:{free_port()}"
[ingest]
processes = 0
""")
    return path


def redis_servers_under(path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "redis-server" in cmd and str(path) in cmd:
            found.append(proc)
    return found


def test_the_private_redis_persists_the_backlog_across_restarts(tmp_path):
    config = config_without_redis(tmp_path)
    socket = tmp_path / "data" / "redis" / "redis.sock"
    keys = Keys("farm")
    farm = FarmProcess(config, workers=1).start()
    try:
        assert farm.status()["redis"]["embedded"] is True
        client = redis_lib.Redis(unix_socket_path=str(socket))
        client.lpush(keys.queue("normal"), encode_batch([alertmanager_webhook(1)], "prometheus"))
        farm.wait_drained(expected_received=1)
        assert farm.terminate() == 0
    finally:
        farm.kill()
    assert redis_servers_under(tmp_path) == []  # stopped with the farm
    assert (tmp_path / "data" / "redis" / "appendonlydir").exists() or \
        list((tmp_path / "data" / "redis").glob("appendonly*"))
    with FarmProcess(config, workers=1) as again:
        client = redis_lib.Redis(unix_socket_path=str(socket))
        assert int(client.get(keys.stat("alerts_received"))) == 1  # the account survived
        client.lpush(keys.queue("normal"), encode_batch([alertmanager_webhook(2)], "prometheus"))
        doc = again.wait_drained(expected_received=2)
        assert doc["counters"]["alerts_indexed"] == 2
    assert redis_servers_under(tmp_path) == []


def test_farm_start_says_clearly_when_redis_is_unreachable(tmp_path):
    config = tmp_path / "farm.toml"
    config.write_text(f"""
[farm]
data_dir = "{tmp_path / 'data'}"
[redis]
url = "redis://127.0.0.1:{free_port()}/0"
[supervisor]
http = "127.0.0.1:{free_port()}"
[ingest]
processes = 0
""")
    result = subprocess.run(FARM + ["start", "--workers", "1", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("farm: cannot reach Redis at redis://127.0.0.1:")
    assert "Check [redis] url" in lines[0]


def test_a_bad_config_stops_start_with_one_line_per_mistake(tmp_path):
    config = tmp_path / "farm.toml"
    config.write_text('[workers]\ncont = 2\n[store]\nkind = "mysql"\n')
    result = subprocess.run(FARM + ["start", "--config", str(config)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "farm: config: unknown key [workers] cont; did you mean 'count'?",
        "farm: config: [store] kind = 'mysql' must be one of 'sqlite', 'elasticsearch'",
    ]
