"""The HTTP target against a small real HTTP server (Starlette on uvicorn) that records every
request: Keep's routes, the API key, real shapes, Retry-After honoured, refusals counted, and a
request whose answer was lost never sent twice."""

from __future__ import annotations

import threading
import time
import uuid

import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from loadgen import runner
from loadgen.http_producer import UNKNOWN
from tests.support.loadgen_runs import plan
from tests.support.ports import free_port
from tests.support.provider_shapes import CHECKS


class Recorder:
    """Answers like the ingest gateway: 202 naming a batch; the 5th request gets one 429
    (Retry-After: 1); the 8th is taken, but its connection drops halfway through the answer;
    every Zabbix request is refused with 400."""

    def __init__(self):
        self.requests: list[tuple[float, str, str | None, bytes, int]] = []
        self.lock = threading.Lock()

    async def webhook(self, request: Request):
        body = await request.body()
        provider = request.path_params["provider"]
        with self.lock:
            number = len(self.requests)
            if number == 4:
                status = 429
            elif number == 7:
                status = 0
            elif provider == "zabbix":
                status = 400
            else:
                status = 202
            self.requests.append((time.time(), request.url.path,
                                  request.headers.get("x-api-key"), body, status))
        if status == 429:
            return JSONResponse({"detail": "slow down"}, 429, {"Retry-After": "1"})
        if status == 400:
            return JSONResponse({"detail": "not today"}, 400)
        if status == 0:  # uvicorn closes a connection whose answer falls short of its length
            return Response(b"{}", 202, {"Content-Length": "100"})
        return JSONResponse({"batch": uuid.uuid4().hex, "events": 1}, 202)


@pytest.fixture
def recorder():
    rec = Recorder()
    app = Starlette(routes=[Route("/alerts/event/{provider}", rec.webhook, methods=["POST"])])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    rec.url = f"http://127.0.0.1:{port}"
    yield rec
    server.should_exit = True
    thread.join(10)


def test_webhooks_are_posted_to_keeps_routes_with_the_key(recorder):
    the_plan = plan(http_url=recorder.url, api_key="secret", rate="200k/s", duration=None,
                    total="300 alerts", mix="prometheus:50,keep:30,zabbix:20", verify=True,
                    producers=1, redis_url=None, repeat="0", flap="0")  # no re-sends: a retried
    # body can only be the retry
    outcome = runner.run(the_plan)
    requests = recorder.requests
    paths = {path for _, path, _, _, _ in requests}
    assert paths == {"/alerts/event/prometheus", "/alerts/event/keep", "/alerts/event/zabbix"}
    assert {key for _, _, key, _, _ in requests} == {"secret"}
    for _, path, _, body, _ in requests:
        CHECKS[path.rsplit("/", 1)[1]](orjson.loads(body))

    throttled_at, _, _, throttled_body, _ = requests[4]
    again = [at for at, _, _, body, _ in requests[5:] if body == throttled_body]
    assert again and again[0] >= throttled_at + 1.0, "re-sent after Retry-After, not before"
    assert outcome.retried == 1

    # The gateway may have stored the request whose answer was lost: it is not sent again.
    _, _, _, unanswered_body, _ = requests[7]
    assert [body for _, _, _, body, _ in requests].count(unanswered_body) == 1
    assert outcome.unknown == 1 and outcome.unknown_detail

    refused = sum(1 for *_, status in requests if status == 400)
    accepted = sum(1 for *_, status in requests if status == 202)
    assert refused and outcome.refused == {"400": refused}
    assert outcome.refusal.startswith("400: ") and "not today" in outcome.refusal
    assert outcome.batches == outcome.notifications == accepted
    log = outcome.logs[0]
    assert log.batch_ids.count("-") == refused and log.batch_ids.count(UNKNOWN) == 1
    assert len(log.batch_ids) == refused + accepted + 1
