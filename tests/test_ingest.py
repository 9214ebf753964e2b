"""The ingest gateway, as monitoring tools see it: real gateway processes
(tests/support/gateways.py), real HTTP, a real Redis."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import os
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import msgpack
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from farm import config as config_mod
from farm.wire import decode_batch
from tests.support.gateways import (
    ACME_KEY,
    BETA_KEY,
    GatewayProcess,
    post,
    stored_batches,
    write_gateway_config,
)
from tests.support.payloads import ALERTMANAGER, DATADOG, GRAFANA, KEEP_ALERTS, ZABBIX
from tests.support.ports import free_port
from tests.support.waiting import wait_until

# --- a gateway shared by the tests that need no special configuration ---------------------------

@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ingest-metrics")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, redis_url, metrics_dir):
    folder = tmp_path_factory.mktemp("ingest")
    config = write_gateway_config(folder / "farm.toml", free_port(), ingest="""
max_body = "64KB"
max_depth = 8
max_items = 500
""")
    with GatewayProcess(config, redis_url, metrics_dir=metrics_dir) as process:
        yield process


@pytest.mark.parametrize("provider, payload, events, lane", [
    ("prometheus", ALERTMANAGER, [ALERTMANAGER], "normal"),
    ("grafana", GRAFANA, [GRAFANA], "critical"),
    ("datadog", DATADOG, [DATADOG], "normal"),
    ("zabbix", ZABBIX, [ZABBIX], "critical"),
    ("keep", KEEP_ALERTS, KEEP_ALERTS, "critical"),
])
def test_each_provider_path_lands_its_payload_as_a_wire_batch(gateway, redis, provider, payload,
                                                              events, lane):
    response = post(f"{gateway.url}/alerts/event/{provider}", payload)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["events"] == len(events)
    assert answer["task_name"] == answer["batch"]
    batches = stored_batches(redis)
    assert list(batches) == [answer["batch"]]
    stored_lane, batch = batches[answer["batch"]]
    assert (stored_lane, batch.tenant, batch.provider) == (lane, "acme", provider)
    assert batch.events == events


def test_the_generic_endpoint_takes_an_alert_or_a_list_as_keep_events(gateway, redis):
    one = post(f"{gateway.url}/alerts/event", KEEP_ALERTS[1])
    many = post(f"{gateway.url}/alerts/event", KEEP_ALERTS)
    assert (one.status_code, many.status_code) == (202, 202)
    batches = stored_batches(redis)
    assert batches[one.json()["batch"]][1].events == [KEEP_ALERTS[1]]
    assert batches[many.json()["batch"]][1].events == KEEP_ALERTS
    assert {b.provider for _lane, b in batches.values()} == {"keep"}


def test_keep_query_parameters_travel_in_the_batch_envelope(gateway, redis):
    response = post(f"{gateway.url}/alerts/event/keep?provider_id=p-1&fingerprint=fp-9",
                    KEEP_ALERTS[1])
    assert response.status_code == 202
    raw = redis.lrange("farm:q:normal", 0, -1)[0]
    envelope = msgpack.unpackb(raw)
    assert (envelope["provider_id"], envelope["fingerprint"]) == ("p-1", "fp-9")
    assert decode_batch(raw).events == [KEEP_ALERTS[1]]


def test_form_bodies_are_taken_as_keep_takes_them(gateway, redis):
    form = post(f"{gateway.url}/alerts/event/zabbix", data={"name": "disk", "severity": "5"})
    multipart = post(f"{gateway.url}/alerts/event/zabbix", data={"name": "cpu"},
                     files={"ignored": (None, "x")})
    # curl -d '{...}' labels JSON as a form; the gateway reads what was obviously meant.
    curl_json = post(f"{gateway.url}/alerts/event/keep", content=b'{"name": "from curl"}',
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert [r.status_code for r in (form, multipart, curl_json)] == [202, 202, 202]
    batches = stored_batches(redis)
    assert batches[form.json()["batch"]][1].events == [{"name": "disk", "severity": "5"}]
    assert batches[form.json()["batch"]][0] == "critical"
    assert batches[multipart.json()["batch"]][1].events == [{"name": "cpu", "ignored": "x"}]
    assert batches[curl_json.json()["batch"]][1].events == [{"name": "from curl"}]


def _basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"api_key:{key}".encode()).decode()


@pytest.mark.parametrize("how", ["header", "query", "basic", "bearer"])
def test_keys_are_accepted_the_ways_keep_accepts_them_and_decide_the_tenant(gateway, redis, how):
    url = f"{gateway.url}/alerts/event/prometheus"
    headers, params = {}, {}
    if how == "header":
        headers["X-API-KEY"] = BETA_KEY
    elif how == "query":
        params["api_key"] = BETA_KEY
    elif how == "basic":
        headers["Authorization"] = _basic(BETA_KEY)
    else:
        headers["Authorization"] = f"Bearer {BETA_KEY}"
    response = post(url, ALERTMANAGER, key=None, headers=headers, params=params)
    assert response.status_code == 202, response.text
    assert stored_batches(redis)[response.json()["batch"]][1].tenant == "beta"


@pytest.mark.parametrize("headers", [
    {},
    {"X-API-KEY": "farm_not-a-key"},
    {"Authorization": _basic("farm_not-a-key")},
    {"Authorization": "Basic !!!not-base64"},
    {"Authorization": f"Basic {base64.b64encode(ACME_KEY.encode()).decode()}"},  # no colon
    {"Authorization": "Bearer"},
])
def test_requests_without_a_valid_key_get_401_and_store_nothing(gateway, redis, headers):
    response = post(f"{gateway.url}/alerts/event/prometheus", ALERTMANAGER, key=None,
                    headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.json()["detail"]
    assert stored_batches(redis) == {}


def test_anonymous_mode_takes_keyless_requests_as_default_but_still_refuses_wrong_keys(
        tmp_path, redis, redis_url):
    config = write_gateway_config(tmp_path / "farm.toml", free_port(),
                                  ingest="allow_anonymous = true")
    with GatewayProcess(config, redis_url) as gw:
        keyless = post(f"{gw.url}/alerts/event", KEEP_ALERTS, key=None)
        wrong = post(f"{gw.url}/alerts/event", KEEP_ALERTS, key="farm_wrong")
        keyed = post(f"{gw.url}/alerts/event", KEEP_ALERTS, key=ACME_KEY)
    assert (keyless.status_code, wrong.status_code, keyed.status_code) == (202, 401, 202)
    batches = stored_batches(redis)
    assert batches[keyless.json()["batch"]][1].tenant == "default"
    assert batches[keyed.json()["batch"]][1].tenant == "acme"


def test_bodies_over_max_body_get_413_whether_declared_or_streamed(gateway, redis):
    big = b'{"name": "' + b"x" * 70_000 + b'"}'
    declared = post(f"{gateway.url}/alerts/event", content=big,
                    headers={"Content-Type": "application/json"})

    def chunks():
        for start in range(0, len(big), 8192):
            yield big[start:start + 8192]

    streamed = post(f"{gateway.url}/alerts/event", content=chunks(),
                    headers={"Content-Type": "application/json"})
    assert "content-length" not in {k.lower() for k in streamed.request.headers}
    for response in (declared, streamed):
        assert response.status_code == 413
        assert "max_body" in response.json()["detail"]
    assert stored_batches(redis) == {}


def _nested(depth: int) -> dict:
    doc: dict = {"name": "deep"}
    for _ in range(depth):
        doc = {"a": doc}
    return doc


@pytest.mark.parametrize("content, reason", [
    (b'{"name": "x"', "not valid JSON"),
    (b'"just a string"', "JSON object or a list of JSON objects"),
    (b'[{"name": "x"}, 3]', "JSON object or a list of JSON objects"),
    (None, "deeper than 8"),
    (b'{"labels": [' + b",".join([b"1"] * 600) + b"]}", "more than 500"),
    (b"[" * 5000 + b"]" * 5000, "JSON"),
])
def test_malformed_or_oversized_json_gets_400_with_the_reason(gateway, redis, content, reason):
    if content is None:
        import orjson

        content = orjson.dumps(_nested(9))
    response = post(f"{gateway.url}/alerts/event/keep", content=content,
                    headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert stored_batches(redis) == {}


def test_unknown_provider_wrong_method_and_wrong_path_get_json_errors(gateway):
    unknown = post(f"{gateway.url}/alerts/event/nagios", {"name": "x"})
    assert unknown.status_code == 400
    assert "nagios" in unknown.json()["detail"]
    wrong_method = httpx.get(f"{gateway.url}/alerts/event", timeout=10)
    assert wrong_method.status_code == 405
    assert "POST" in wrong_method.json()["detail"]
    nowhere = post(f"{gateway.url}/alerts", {"name": "x"})
    assert nowhere.status_code == 404
    assert "/alerts/event" in nowhere.json()["detail"]


def test_paths_beside_the_webhook_routes_get_json_404_and_store_nothing(gateway, redis):
    for path in ("/alerts/event/prometheus/extra", "/alerts/events", "/alerts/event/x/y"):
        response = post(f"{gateway.url}{path}", ALERTMANAGER)
        assert response.status_code == 404, path
        assert "/alerts/event" in response.json()["detail"]
    assert stored_batches(redis) == {}


def test_webhooks_on_one_kept_alive_connection_are_each_answered_in_full(gateway, redis):
    import orjson

    body = orjson.dumps(ALERTMANAGER)
    request = (f"POST /alerts/event/prometheus HTTP/1.1\r\nHost: gw\r\nX-API-KEY: {ACME_KEY}"
               f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
               ).encode() + body
    host, port = gateway.url.removeprefix("http://").split(":")
    answers = []
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        reader = conn.makefile("rb")
        for _ in range(3):
            conn.sendall(request)
            status = reader.readline()
            headers = {}
            while (line := reader.readline()) != b"\r\n":
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            answers.append((status, headers, reader.read(int(headers["content-length"]))))
    ids = set()
    for status, headers, content in answers:
        assert status.startswith(b"HTTP/1.1 202")
        assert headers["content-type"] == "application/json"
        assert "ratelimit-remaining" in headers
        ids.add(orjson.loads(content)["batch"])
    assert ids <= set(stored_batches(redis)) and len(ids) == 3


def test_a_webhook_whose_strings_hold_many_brackets_is_taken(gateway, redis):
    # More brackets than max_depth, all inside strings: the document itself is shallow.
    event = {"name": "brackets", "description": "{[" * 200}
    response = post(f"{gateway.url}/alerts/event/keep", event)
    assert response.status_code == 202
    lane, batch = stored_batches(redis)[response.json()["batch"]]
    assert batch.events == [event]


def test_an_empty_list_is_accepted_and_stores_nothing(gateway, redis):
    response = post(f"{gateway.url}/alerts/event", [])
    assert response.status_code == 202
    assert response.json() == {"batch": None, "events": 0, "task_name": None}
    assert stored_batches(redis) == {}


def test_metrics_count_requests_bytes_batches_and_refusals(gateway, redis, metrics_dir):
    for _ in range(3):
        assert post(f"{gateway.url}/alerts/event/prometheus", ALERTMANAGER).status_code == 202
    assert post(f"{gateway.url}/alerts/event/prometheus", ALERTMANAGER,
                key="farm_wrong").status_code == 401
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(metrics_dir))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in registry.collect() for s in family.samples}

    def value(name, **labels):
        return samples.get((name, tuple(sorted(labels.items()))), 0)

    assert value("farm_ingest_requests_total", route="/alerts/event/{provider_type}",
                 status="202", tenant="acme", provider="prometheus") >= 3
    assert value("farm_ingest_refused_total", reason="unauthorized", tenant="-",
                 provider="prometheus") >= 1
    assert value("farm_ingest_bytes_total", tenant="acme", provider="prometheus") > 0
    assert value("farm_ingest_batch_events_count") >= 1
    assert value("farm_ingest_store_seconds_count") >= 1


# --- batching ----------------------------------------------------------------------------------

def test_concurrent_requests_for_one_tenant_and_provider_share_a_batch(tmp_path, redis,
                                                                       redis_url):
    config = write_gateway_config(tmp_path / "farm.toml", free_port(), ingest="flush_ms = 500")
    with GatewayProcess(config, redis_url) as gw, \
            concurrent.futures.ThreadPoolExecutor(8) as pool:
        bodies = [{"name": f"alert {n}"} for n in range(8)]
        responses = list(pool.map(lambda body: post(f"{gw.url}/alerts/event", body), bodies))
    assert all(r.status_code == 202 for r in responses)
    ids = [r.json()["batch"] for r in responses]
    assert len(set(ids)) < len(ids)
    batches = stored_batches(redis)
    assert set(batches) == set(ids)
    assert sorted(e["name"] for _lane, b in batches.values() for e in b.events) == \
        sorted(b["name"] for b in bodies)
    for response, body in zip(responses, bodies, strict=True):
        assert body in batches[response.json()["batch"]][1].events


# --- rate limits -------------------------------------------------------------------------------

def test_a_rate_limit_is_enforced_across_two_gateway_processes(tmp_path, redis, redis_url):
    # 10 requests per hour with an hour's burst: a bucket of 10 that refills one per 6 minutes,
    # so nothing refills while the test runs.
    ingest = 'rate = "10/h"\nburst_seconds = 3600'
    first = write_gateway_config(tmp_path / "a.toml", free_port(), ingest=ingest,
                                 rates='"acme/datadog" = "2/h"')
    second = write_gateway_config(tmp_path / "b.toml", free_port(), ingest=ingest,
                                  rates='"acme/datadog" = "2/h"')
    with GatewayProcess(first, redis_url) as a, GatewayProcess(second, redis_url, index=1) as b:
        answers = [post(f"{gw.url}/alerts/event/prometheus", ALERTMANAGER)
                   for _ in range(7) for gw in (a, b)]
        other_provider = post(f"{a.url}/alerts/event/grafana", GRAFANA)
        other_tenant = post(f"{b.url}/alerts/event/prometheus", ALERTMANAGER, key=BETA_KEY)
        overridden = [post(f"{gw.url}/alerts/event/datadog", DATADOG) for gw in (a, b, a)]
    statuses = [r.status_code for r in answers]
    assert statuses == [202] * 10 + [429] * 4
    refused = answers[-1]
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Limit"] == "10"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert int(refused.headers["RateLimit-Reset"]) > 0
    assert "rate limit" in refused.json()["detail"]
    assert answers[0].headers["RateLimit-Remaining"] == "9"
    assert (other_provider.status_code, other_tenant.status_code) == (202, 202)
    assert [r.status_code for r in overridden] == [202, 202, 429]
    assert len(stored_batches(redis)) == 14


# --- backpressure ------------------------------------------------------------------------------



def test_backpressure_turns_on_at_high_water_and_off_below_low_water(tmp_path, redis,
                                                                     redis_url):
    config = write_gateway_config(tmp_path / "farm.toml", free_port(), ingest="""
high_water = "6"
low_water = "3"
critical_water = "3"
backlog_check_ms = 20
""")
    normal_alert = {"name": "disk", "severity": "warning"}
    critical_alert = {"name": "down", "severity": "critical"}

    def backlog(gw) -> int:
        doc = gw.health()
        return sum(doc["backlog"]["batches"].values()), doc["backpressure"]

    with GatewayProcess(config, redis_url) as gw:
        url = f"{gw.url}/alerts/event"
        assert post(url, normal_alert).status_code == 202
        redis.lpush("farm:q:normal", *[b"backlog"] * 5)          # 6 batches: at high water
        wait_until(lambda: backlog(gw) == (6, True), "backpressure on")
        refused = post(url, normal_alert)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert "high_water" in refused.json()["detail"]
        # Critical alerts still enter the critical lane, up to critical_water (3 batches).
        critical = [post(url, critical_alert) for _ in range(3)]
        assert [r.status_code for r in critical] == [202, 202, 202]
        assert redis.llen("farm:q:critical") == 3
        wait_until(lambda: post(url, critical_alert).status_code == 429, "critical lane full")
        # Every lane refuses now, so the body is not even read: a malformed one gets 429 too.
        malformed = post(url, content=b'{"name": ', headers={"Content-Type": "application/json"})
        assert malformed.status_code == 429
        assert "high_water" in malformed.json()["detail"]

        redis.delete("farm:q:critical")
        redis.ltrim("farm:q:normal", 0, 3)                       # 4 batches: above low water
        wait_until(lambda: backlog(gw)[0] == 4, "backlog measured at 4")
        assert backlog(gw) == (4, True)
        assert post(url, normal_alert).status_code == 429

        redis.ltrim("farm:q:normal", 0, 1)                       # 2 batches: below low water
        wait_until(lambda: backlog(gw) == (2, False), "backpressure off")
        assert post(url, normal_alert).status_code == 202


# --- memory bounds -----------------------------------------------------------------------------

def test_bodies_past_max_inflight_bytes_get_503_until_the_held_ones_are_answered(tmp_path, redis,
                                                                                 redis_url):
    """A body counts its Content-Length from the start, or its bytes as they are read when it
    declares none; what the held bodies leave of max_inflight_bytes is all a new one may use."""
    config = write_gateway_config(tmp_path / "farm.toml", free_port(), ingest="""
max_body = "64KB"
max_inflight_bytes = "100KB"
""")
    held_body = b'{"name": "held", "pad": "' + b"x" * 59_000 + b'"}'
    first_part = 58_000
    json_type = {"Content-Type": "application/json"}

    def held_request(gw, release: threading.Event, declared: bool) -> httpx.Response:
        def chunks():
            yield held_body[:first_part]
            release.wait(30)
            yield held_body[first_part:]

        headers = {**json_type, "Content-Length": str(len(held_body))} if declared else json_type
        return post(f"{gw.url}/alerts/event", content=chunks(), headers=headers)

    def padded(size: int) -> bytes:
        return b'{"name": "other", "pad": "' + b"y" * (size - 28) + b'"}'

    with GatewayProcess(config, redis_url) as gw, \
            concurrent.futures.ThreadPoolExecutor(1) as pool:
        for declared, holds in ((True, len(held_body)), (False, first_part)):
            release = threading.Event()
            held = pool.submit(held_request, gw, release, declared)
            wait_until(lambda want=holds: gw.health()["inflight"]["bytes"] == want,
                      "the held body counted")
            refused = post(f"{gw.url}/alerts/event", content=padded(50_000), headers=json_type)
            fits = post(f"{gw.url}/alerts/event", content=padded(30_000), headers=json_type)
            release.set()
            assert refused.status_code == 503
            assert int(refused.headers["Retry-After"]) >= 1
            assert "max_inflight_bytes" in refused.json()["detail"]
            assert fits.status_code == 202
            assert held.result().status_code == 202
            wait_until(lambda: gw.health()["inflight"] == {"requests": 0, "bytes": 0},
                      "every byte given back")
    names = sorted(e["name"] for _lane, b in stored_batches(redis).values() for e in b.events)
    assert names == ["held", "held", "other", "other"]


def test_stopping_a_gateway_closes_its_redis_connections(tmp_path, redis, redis_url):
    """Only the gateway's own connections are counted, by a name given to them: the session's
    Redis also serves other processes, and Redis frees a client that hung up at the end of its
    event loop turn, so it may still list one in the answer to a command it read in the same
    turn. Hence the wait for them to go, with the gateway still referenced: nothing but its
    stop() can close them."""
    from farm.ingest.app import make_app

    cfg = config_mod.load(write_gateway_config(tmp_path / "farm.toml", free_port()))
    name = f"gateway-under-test-{os.getpid()}"
    named_url = f"{redis_url}{'&' if '?' in redis_url else '?'}client_name={name}"

    def connections() -> int:
        return sum(1 for client in redis.client_list() if client["name"] == name)

    async def start_and_stop() -> tuple[int, int]:
        gateway = make_app(cfg, named_url).state.gateway
        await gateway.start()
        await gateway.limiter.admit("acme", "keep")
        running = connections()
        await gateway.stop()
        deadline = time.monotonic() + 20
        while connections() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return running, connections()

    running, stopped = asyncio.run(start_and_stop())
    assert running > 0
    assert stopped == 0


# --- failures ----------------------------------------------------------------------------------

def test_a_request_that_cannot_be_stored_gets_503_never_202(tmp_path):
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    config = write_gateway_config(tmp_path / "farm.toml", free_port())
    gw = GatewayProcess(config, dead_redis).start(healthy=False)
    try:
        response = post(f"{gw.url}/alerts/event/prometheus", ALERTMANAGER)
        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) >= 1
        assert "Redis" in response.json()["detail"]
        health = httpx.get(f"{gw.url}/healthz", timeout=10)
        assert health.status_code == 503
        assert health.json()["status"] == "unhealthy"
    finally:
        gw.stop()


def test_sigkill_of_a_gateway_loses_nothing_that_got_202(tmp_path, redis, redis_url):
    """Two gateways share one port; one is SIGKILLed while requests are in flight (batches held
    open by flush_ms). Every request answered 202 must be in Redis, in the batch it was told."""
    config = write_gateway_config(tmp_path / "farm.toml", free_port(), ingest="flush_ms = 50")
    first = GatewayProcess(config, redis_url, index=0).start()
    second = GatewayProcess(config, redis_url, index=1).start()
    accepted: dict[str, str] = {}        # marker -> batch id
    lock = threading.Lock()
    stop = threading.Event()
    sent = [0]

    def client(n: int) -> None:
        with httpx.Client(timeout=30) as http:
            i = 0
            while not stop.is_set():
                marker = f"{n}-{i}"
                i += 1
                try:
                    response = http.post(f"{first.url}/alerts/event",
                                         json={"name": marker, "severity": "warning"},
                                         headers={"X-API-KEY": ACME_KEY})
                except httpx.TransportError:
                    continue
                with lock:
                    sent[0] += 1
                    if response.status_code == 202:
                        accepted[marker] = response.json()["batch"]

    try:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            for n in range(16):
                pool.submit(client, n)
            wait_until(lambda: len(accepted) >= 200, "traffic before the kill", timeout=60)
            os.kill(first.proc.pid, signal.SIGKILL)
            first.proc.wait()
            before = len(accepted)
            wait_until(lambda: len(accepted) >= before + 200, "traffic after the kill",
                      timeout=60)
            stop.set()
    finally:
        stop.set()
        first.kill()
        second.stop()
    batches = stored_batches(redis)
    in_redis = {event["name"]: batch_id for batch_id, (_lane, batch) in batches.items()
                for event in batch.events}
    lost = {m: b for m, b in accepted.items() if in_redis.get(m) != b}
    assert not lost, f"{len(lost)} of {len(accepted)} accepted requests are not in Redis"


def reached(gw: GatewayProcess, futures: list[concurrent.futures.Future]) -> int:
    """Requests answered plus those the gateway holds; answered ones are counted first, so none
    is counted twice."""
    answered = sum(future.done() for future in futures)
    return answered + gw.health()["inflight"]["requests"]


def test_sigterm_drains_answers_requests_in_flight_and_exits_0(tmp_path, redis, redis_url):
    config = write_gateway_config(tmp_path / "farm.toml", free_port(), ingest="flush_ms = 1000")
    gw = GatewayProcess(config, redis_url).start()
    try:
        with concurrent.futures.ThreadPoolExecutor(5) as pool:
            futures = [pool.submit(post, f"{gw.url}/alerts/event", {"name": f"a{n}"})
                       for n in range(5)]
            # SIGTERM once all five reached the gateway: each waits there in its (1 s) batch or,
            # on a slow machine, was answered already.
            wait_until(lambda: reached(gw, futures) == 5, "5 requests in the gateway")
            gw.proc.send_signal(signal.SIGTERM)
            responses = [f.result() for f in futures]
        assert gw.proc.wait(30) == 0
    finally:
        gw.kill()
    assert [r.status_code for r in responses] == [202] * 5
    batches = stored_batches(redis)
    for response in responses:
        assert response.json()["batch"] in batches
