"""Run a real farm (`farm start`) as a subprocess for integration and fault tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from farm.config import load
from tests.support.ports import free_port


def write_config(path: Path, data_dir: Path, redis_url: str, prefix: str = "farm",
                 extra: str = "", ingest: bool = False, node_id: str = "test") -> Path:
    """A config file for a test farm: its own data folder, Redis, and a free admin port; the
    ingest gateway only when asked (then on a free port, anonymous)."""
    if "[ingest]" in extra:
        gateway = ""
    elif ingest:
        gateway = f'[ingest]\nhttp = "127.0.0.1:{free_port()}"\nallow_anonymous = true\n'
    else:
        gateway = "[ingest]\nprocesses = 0\n"
    path.write_text(f"""{gateway}
[farm]
data_dir = "{data_dir}"
node_id = "{node_id}"

[redis]
url = "{redis_url}"
prefix = "{prefix}"

[supervisor]
http = "127.0.0.1:{free_port()}"
grace_seconds = 30
restart_window_seconds = 60
restart_limit = 10

[workers]
heartbeat_seconds = 10
{extra}
""")
    return path


def engine_store_table(url: str, prefix: str, replicas: int = 0, **more) -> str:
    """The [store] table of a test farm that indexes into the engine at url (one node: no
    replicas, unless asked)."""
    lines = [f'{key} = {value!r}' if isinstance(value, (int, float)) else f'{key} = "{value}"'
             for key, value in more.items()]
    return "\n".join(['[store]', 'kind = "elasticsearch"', f'url = "{url}"',
                      f'index_prefix = "{prefix}"', f"replicas = {replicas}", *lines]) + "\n"


class FarmProcess:
    """`farm start --workers N --config FILE` in a subprocess (workers None: no --workers, the
    config's [workers] count decides); `status()` reads /status."""

    def __init__(self, config: Path, workers: int | None = 2, env: dict | None = None):
        self.config = Path(config)
        self.workers = workers
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.log = self.config.with_suffix(".log")
        cfg = load(self.config, env={})
        self.http = cfg.supervisor.http
        self.ingest_http = cfg.ingest.http if cfg.ingest.processes else None

    def start(self, timeout: float = 60) -> FarmProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "farm.cli", "start",
             *(["--workers", str(self.workers)] if self.workers else []),
             "--config", str(self.config)],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"farm exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                doc = self.status()
                if doc["indexer"]["alive"] and all(w["alive"] for w in doc["workers"]):
                    return self
            except (urllib.error.URLError, ConnectionError, OSError, KeyError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"farm did not become ready in {timeout}s:\n{self.tail()}")

    def status(self) -> dict:
        with urllib.request.urlopen(f"http://{self.http}/status", timeout=10) as response:
            return json.load(response)

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://{self.http}{path}", timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def wait_drained(self, expected_received: int | None = None, timeout: float = 120) -> dict:
        """Wait until queues and inflight lists are empty (and, if given, until
        alerts_received reached the expected count); returns the final status."""
        deadline = time.monotonic() + timeout
        doc = {}
        while time.monotonic() < deadline:
            doc = self.status()
            idle = not (doc["queues"]["critical"] or doc["queues"]["normal"] or doc["inflight"])
            enough = expected_received is None or \
                doc["counters"]["alerts_received"] >= expected_received
            if idle and enough:
                return doc
            time.sleep(0.2)
        raise TimeoutError(f"farm did not drain in {timeout}s: {doc}\n{self.tail()}")

    def parts(self) -> dict[str, dict]:
        """Each worker's ('worker-N') and the indexer's entry in /status (pid, alive, ...)."""
        doc = self.status()
        parts = {f"worker-{i}": w for i, w in enumerate(doc["workers"])}
        parts["indexer"] = doc["indexer"]
        return parts

    def children(self) -> dict[str, int]:
        """pid of each worker ('worker-N') and of the indexer, from /status."""
        return {name: part["pid"] for name, part in self.parts().items()}

    def terminate(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the supervisor and everything it started (a dead host)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            family = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        self.proc.kill()
        for child in family:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> FarmProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.terminate(60)
            except subprocess.TimeoutExpired:
                self.kill()
