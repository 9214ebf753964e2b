"""Slow clients against a real gateway on a real socket: headers, bodies and whole requests that
take too long are cut, idle connections are closed, a process holds at most max_connections, and
nothing of a cut request reaches Redis.

Limits are short (1 s) so that the tests stay quick; clients trickle for far longer than that, so
only a gateway that cuts them lets a test pass. Every wait is bounded by GIVE_UP_SECONDS, and no
test asserts how long anything took.
"""

from __future__ import annotations

import select
import socket
import time

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from farm.ingest.process import split_address
from tests.support.gateways import (
    ACME_KEY,
    GatewayProcess,
    post,
    stored_batches,
    write_gateway_config,
)
from tests.support.ports import free_port

GIVE_UP_SECONDS = 30
PAUSE = 0.2                      # between trickled bytes
SLOW_BODY = b'{"name": "slow", "severity": "warning", "pad": "' + b"x" * 100 + b'"}'


def request_head(body: bytes, key: str | None = ACME_KEY) -> bytes:
    lines = ["POST /alerts/event HTTP/1.1", "Host: farm", "Content-Type: application/json",
             f"Content-Length: {len(body)}", "User-Agent: a-slow-client-taking-its-time"]
    if key is not None:
        lines.append(f"X-API-KEY: {key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def trickle(address: str, at_once: bytes, trickled: bytes, stop_on_answer: bool = True
            ) -> tuple[bytes, bool]:
    """Send `at_once`, then `trickled` one byte per PAUSE (stopping as soon as the server answers,
    unless told not to); returns what the server sent until it closed the connection, and
    whether the server closed it before every byte was sent. Fails if it never closes."""
    with socket.create_connection(split_address(address), timeout=GIVE_UP_SECONDS) as sock:
        unsent = len(trickled)
        try:
            sock.sendall(at_once)
            for byte in trickled:
                if stop_on_answer and select.select([sock], [], [], PAUSE)[0]:
                    break
                if not stop_on_answer:
                    time.sleep(PAUSE)
                sock.sendall(bytes([byte]))
                unsent -= 1
        except (BrokenPipeError, ConnectionResetError):
            pass
        received = read_until_closed(sock)
        if not stop_on_answer and unsent:
            # Still sending when the server closed: it cut the connection, not the client.
            return received, True
        return received, unsent > 0


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    sock.settimeout(GIVE_UP_SECONDS)
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        except TimeoutError:
            raise AssertionError(f"the gateway kept the connection open; it sent "
                                 f"{received!r}") from None
        if not chunk:
            return received
        received += chunk


def status_and_doc(response: bytes) -> tuple[int, dict]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower()
    return status, orjson.loads(body)


def refused_counts(metrics_dir) -> dict[str, float]:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(metrics_dir))
    return {s.labels["reason"]: s.value for family in registry.collect()
            for s in family.samples
            if s.name == "farm_ingest_refused_total" and s.labels["tenant"] == "-"}


def start_gateway(folder, redis_url, ingest: str, metrics_dir=None) -> GatewayProcess:
    config = write_gateway_config(folder / "farm.toml", free_port(), ingest=ingest)
    return GatewayProcess(config, redis_url, metrics_dir=metrics_dir).start()


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("timeout-metrics")


@pytest.fixture(scope="module")
def short_phases(tmp_path_factory, redis_url, metrics_dir):
    """A gateway whose headers and body limits are 1 s each; the whole request may take 30 s."""
    gateway = start_gateway(tmp_path_factory.mktemp("phases"), redis_url, """
header_timeout_seconds = 1
body_timeout_seconds = 1
request_timeout_seconds = 30
keepalive_timeout_seconds = 1
""", metrics_dir)
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def short_request(tmp_path_factory, redis_url):
    """A gateway whose whole-request limit (1 s) is shorter than its headers and body limits."""
    gateway = start_gateway(tmp_path_factory.mktemp("request"), redis_url, """
header_timeout_seconds = 30
body_timeout_seconds = 30
request_timeout_seconds = 1
""")
    yield gateway
    gateway.stop()


def test_trickled_headers_get_408_and_the_connection_is_closed(short_phases, metrics_dir):
    head = request_head(SLOW_BODY)
    response, cut = trickle(short_phases.address, b"", head + SLOW_BODY)
    assert cut
    status, doc = status_and_doc(response)
    assert status == 408
    assert "header_timeout_seconds" in doc["detail"]
    assert refused_counts(metrics_dir)["timeout"] >= 1


def test_a_connection_that_sends_nothing_is_closed_after_the_header_limit(short_phases):
    with socket.create_connection(split_address(short_phases.address)) as sock:
        assert read_until_closed(sock) == b""


def test_a_trickled_body_gets_408_and_nothing_of_it_reaches_redis(short_phases, redis):
    response, cut = trickle(short_phases.address, request_head(SLOW_BODY), SLOW_BODY)
    assert cut
    status, doc = status_and_doc(response)
    assert status == 408
    assert "body_timeout_seconds" in doc["detail"]
    fast = post(f"{short_phases.url}/alerts/event", {"name": "fast"})
    assert fast.status_code == 202
    events = [e for _lane, b in stored_batches(redis).values() for e in b.events]
    assert events == [{"name": "fast"}]


def test_fast_requests_still_get_202_under_one_second_limits(short_phases, redis):
    with httpx.Client(timeout=GIVE_UP_SECONDS, headers={"X-API-KEY": ACME_KEY}) as client:
        answers = [client.post(f"{short_phases.url}/alerts/event/keep", json={"name": f"a{n}"})
                   for n in range(50)]
    assert [r.status_code for r in answers] == [202] * 50
    names = sorted(e["name"] for _lane, b in stored_batches(redis).values() for e in b.events)
    assert names == sorted(f"a{n}" for n in range(50))


def test_an_idle_keep_alive_connection_is_closed(short_phases):
    body = b'{"name": "then idle"}'
    response, cut = trickle(short_phases.address, request_head(body) + body, b"")
    assert not cut
    assert response.startswith(b"HTTP/1.1 202")


@pytest.mark.parametrize("at_once, trickled", [
    (b"", request_head(SLOW_BODY) + SLOW_BODY),
    (request_head(SLOW_BODY), SLOW_BODY),
], ids=["headers", "body"])
def test_a_request_slower_than_the_whole_request_limit_is_cut(short_request, redis, at_once,
                                                              trickled):
    response, cut = trickle(short_request.address, at_once, trickled)
    assert cut
    status, doc = status_and_doc(response)
    assert status == 408
    assert "request_timeout_seconds" in doc["detail"]
    assert stored_batches(redis) == {}


def test_a_body_still_trickling_after_an_early_answer_is_cut(short_request, redis):
    """A request refused before its body is read (here: no API key) is answered at once; the
    client trickling the rest of its body does not keep the connection open beyond the
    whole-request limit."""
    response, cut = trickle(short_request.address, request_head(SLOW_BODY, key=None), SLOW_BODY,
                            stop_on_answer=False)
    assert cut
    assert status_and_doc(response)[0] == 401
    assert stored_batches(redis) == {}


def test_connections_beyond_max_connections_get_503_and_are_closed(tmp_path, redis_url):
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    gateway = start_gateway(tmp_path, redis_url, "max_connections = 3", metrics)
    try:
        counts = refused_counts(metrics)
        assert (counts["timeout"], counts["too_many_connections"]) == (0, 0)
        held = [socket.create_connection(split_address(gateway.address)) for _ in range(3)]
        with socket.create_connection(split_address(gateway.address)) as beyond:
            status, doc = status_and_doc(read_until_closed(beyond))
        assert status == 503
        assert "max_connections" in doc["detail"]
        assert not select.select(held, [], [], 0)[0], "the held connections were let be"
        assert refused_counts(metrics)["too_many_connections"] >= 1
        for sock in held:
            sock.close()
        deadline = time.monotonic() + GIVE_UP_SECONDS
        while True:
            try:
                if post(f"{gateway.url}/alerts/event", {"name": "after"}).status_code == 202:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the gateway never took connections again"
            time.sleep(0.05)
    finally:
        gateway.stop()


def test_a_connection_answered_before_its_body_is_closed_once_it_idles(short_phases, redis):
    """An early answer, with the rest of the body sent at once afterwards: the connection is
    then idle, and idle connections are closed (here after keepalive_timeout_seconds, long
    before request_timeout_seconds)."""
    with socket.create_connection(split_address(short_phases.address),
                                  timeout=GIVE_UP_SECONDS) as sock:
        sock.sendall(request_head(SLOW_BODY, key=None))
        answer = sock.recv(65536)
        sock.sendall(SLOW_BODY)
        response = answer + read_until_closed(sock)
    assert status_and_doc(response)[0] == 401
    assert stored_batches(redis) == {}
