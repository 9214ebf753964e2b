"""Gateway processes for tests: `python -m farm.ingest.process` (the entry the supervisor uses)
with a config of its own, the API keys of two test tenants, and what a test posts and reads back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from farm import config as config_mod
from farm.ingest.auth import hash_key
from farm.redis_keys import LANES
from farm.wire import decode_batch

ACME_KEY = "farm_test-key-of-acme"
BETA_KEY = "farm_test-key-of-beta"



def write_gateway_config(path: Path, port: int, ingest: str = "", keys: bool = True,
                         rates: str = "") -> Path:
    """A config for test gateways on 127.0.0.1:port, with keys for tenants acme and beta."""
    keys_table = (f'[ingest.keys]\nacme = ["{hash_key(ACME_KEY)}"]\n'
                  f'beta = ["{hash_key(BETA_KEY)}"]\n') if keys else ""
    if "rate =" not in ingest:
        ingest = f'rate = "100000/s"\n{ingest}'
    path.write_text(f"""
[farm]
data_dir = "{path.parent / 'data'}"

[supervisor]
grace_seconds = 20

[ingest]
http = "127.0.0.1:{port}"
{ingest}

{keys_table}
{'[ingest.rates]' if rates else ''}
{rates}
""")
    return path


class GatewayProcess:
    """One gateway process (`python -m farm.ingest.process`) for a test; stop() or kill()."""

    def __init__(self, config: Path, redis_url: str, index: int = 0,
                 metrics_dir: Path | None = None):
        self.config = config
        self.redis_url = redis_url
        self.index = index
        self.metrics_dir = metrics_dir
        self.address = config_mod.load(config).ingest.http
        self.url = f"http://{self.address}"
        self.log = config.with_name(f"{config.stem}-gateway-{index}.log")
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30, healthy: bool = True) -> GatewayProcess:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir or "")}
        if self.metrics_dir is None:
            env.pop("PROMETHEUS_MULTIPROC_DIR")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "farm.ingest.process", "--config", str(self.config),
             "--index", str(self.index), "--redis-url", self.redis_url],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                status = httpx.get(f"{self.url}/healthz", timeout=2).status_code
                if status == 200 or not healthy:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"gateway did not answer in {timeout}s:\n{self.tail()}")

    def health(self) -> dict:
        return httpx.get(f"{self.url}/healthz", timeout=5).json()

    def stop(self, timeout: float = 30) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        try:
            self.stop()
        except subprocess.TimeoutExpired:
            self.kill()


def stored_batches(redis) -> dict[str, tuple[str, object]]:
    """Every batch in both lanes: id -> (lane, decoded batch)."""
    found = {}
    for lane in LANES:
        for raw in redis.lrange(f"farm:q:{lane}", 0, -1):
            batch = decode_batch(raw)
            found[batch.id] = (lane, batch)
    return found


def post(url: str, body=None, key: str | None = ACME_KEY, **kwargs) -> httpx.Response:
    headers = kwargs.pop("headers", {})
    if key is not None:
        headers["X-API-KEY"] = key
    if body is not None:
        kwargs["json"] = body
    return httpx.post(url, headers=headers, timeout=30, **kwargs)
