"""The gateway's HTTP application: Keep's webhook routes, /healthz, /openapi.json.

The webhook route (`POST /alerts/event[/{provider}]`) is the hot path: the outermost ASGI
callable (FrontDoor) hands it straight to a plain ASGI endpoint, without Starlette's
middleware, routing, Request and Response objects, which cost about a third of a webhook's CPU
in the gateway (docs/performance.md#ingest-gateway). Everything else (the other routes, 404 and
405 answers, the lifespan) goes through the Starlette application, which also routes the
webhook paths to the same endpoint should a request reach it. The steps a webhook goes through
are in farm/ingest/gateway.py.

Starlette rather than FastAPI: bodies are taken unvalidated, as Keep takes them, so FastAPI's
per-request pydantic validation would cost time and its generated OpenAPI would describe checks
that are not made (farm/ingest/openapi.py says what is really accepted); the supervisor's admin
endpoint already runs on Starlette.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farm.config import Config
from farm.ingest.errors import Refused
from farm.ingest.gateway import Gateway, unavailable
from farm.ingest.incoming import Incoming
from farm.ingest.openapi import document
from farm.wire import PROVIDERS

log = logging.getLogger("farm.ingest")

GENERIC_ROUTE = "/alerts/event"
PROVIDER_ROUTE = "/alerts/event/{provider_type}"
_PROVIDER_PREFIX = GENERIC_ROUTE + "/"
_JSON = (b"content-type", b"application/json")

Send = Callable[[dict], Awaitable[None]]


def json_response(doc: dict, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(doc), status, headers, media_type="application/json")


async def send_json(send: Send, doc: dict, status: int, headers: dict[str, str]) -> None:
    """Answer with a JSON document, as json_response would, straight over ASGI."""
    body = orjson.dumps(doc)
    raw = [_JSON, (b"content-length", str(len(body)).encode())]
    for name, value in headers.items():
        raw.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class FrontDoor:
    """The process's ASGI application: webhooks straight to WebhookEndpoint, the rest to the
    Starlette app. `state` is the Starlette app's (its `gateway` and `openapi`)."""

    def __init__(self, app: Starlette, endpoint: WebhookEndpoint):
        self.app = app
        self.endpoint = endpoint
        self.state = app.state

    async def __call__(self, scope: dict, receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            if path == GENERIC_ROUTE:
                return await self.endpoint.handle(scope, receive, send, "keep", GENERIC_ROUTE)
            if path.startswith(_PROVIDER_PREFIX):
                provider = path[len(_PROVIDER_PREFIX):]
                if provider and "/" not in provider:
                    return await self.endpoint.handle(scope, receive, send, provider,
                                                      PROVIDER_ROUTE)
        await self.app(scope, receive, send)


class WebhookEndpoint:
    """POST /alerts/event[/{provider_type}]: 202 with the batch id once the events are in
    Redis, or the JSON refusal of the first step that says no. Also a Starlette endpoint (an
    ASGI app that reads the route's path parameters)."""

    def __init__(self, gateway: Gateway):
        self.gateway = gateway

    async def __call__(self, scope: dict, receive, send: Send) -> None:
        params = scope.get("path_params", {})
        if "provider_type" in params:
            await self.handle(scope, receive, send, params["provider_type"], PROVIDER_ROUTE)
        else:
            await self.handle(scope, receive, send, "keep", GENERIC_ROUTE)

    async def handle(self, scope: dict, receive, send: Send, provider: str,
                     route: str) -> None:
        try:
            status, doc, headers, tenant, reason = await self.answer(
                Incoming(scope, receive), provider)
        except Exception as exc:
            log.exception("unexpected error in the ingest gateway", exc_info=exc)
            status, doc, headers, tenant, reason = 500, _internal(exc), {}, "-", None
        label = provider if provider in PROVIDERS else "-"
        metrics = self.gateway.metrics
        if metrics is not None:
            metrics.answered(route, status, tenant, label)
            if reason is not None:
                metrics.refused(reason, tenant, label)
        await send_json(send, doc, status, headers)

    async def answer(self, request: Incoming,
                     provider: str) -> tuple[int, dict, dict, str, str | None]:
        """(status, document, headers, tenant, refusal reason) for one webhook."""
        gateway = self.gateway
        started = time.perf_counter()
        if gateway.inflight >= gateway.max_inflight:
            refused = unavailable(f"this gateway process holds {gateway.max_inflight} "
                                  f"requests already ([ingest] max_inflight)")
            refused.reason = "overloaded"
            return _refusal(refused, "-")
        gateway.inflight += 1
        hold = gateway.budget.hold()
        try:
            batch_id, n_events, size, headers = await gateway.take(request, provider, hold)
        except Refused as refused:
            return _refusal(refused, request.tenant)
        finally:
            gateway.inflight -= 1
            hold.release()
        if gateway.metrics is not None:
            gateway.metrics.accepted(request.tenant, provider if provider in PROVIDERS else "-",
                                     size, n_events, time.perf_counter() - started)
        return (202, {"batch": batch_id, "events": n_events, "task_name": batch_id}, headers,
                request.tenant, None)


def _refusal(refused: Refused, tenant: str) -> tuple[int, dict, dict, str, str | None]:
    return refused.status, {"detail": refused.detail}, refused.headers, tenant, refused.reason


def _internal(exc: Exception) -> dict:
    return {"detail": f"internal error ({type(exc).__name__}); the request was not stored, "
                      f"send it again"}


def make_app(cfg: Config, redis_url: str, metrics=None) -> FrontDoor:
    """The gateway application; its lifespan connects to Redis and drains batches at the end.
    The handlers find the process's Gateway in `app.state.gateway`."""
    gateway = Gateway(cfg, redis_url, metrics)
    endpoint = WebhookEndpoint(gateway)
    app = Starlette(
        routes=[Route(GENERIC_ROUTE, endpoint, methods=["POST"]),
                Route(PROVIDER_ROUTE, endpoint, methods=["POST"]),
                Route("/healthz", healthz, methods=["GET"]),
                Route("/openapi.json", openapi_json, methods=["GET"])],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan)
    app.state.gateway = gateway
    app.state.openapi = orjson.dumps(document())
    return FrontDoor(app, endpoint)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    gateway: Gateway = app.state.gateway
    await gateway.start()
    try:
        yield
    finally:
        await gateway.stop()


async def healthz(request: Request) -> Response:
    """GET /healthz: 200 while Redis answers the backlog checks, else 503; with the gate, the
    last backlog seen and what this process holds."""
    gateway: Gateway = request.app.state.gateway
    gate = gateway.gate
    doc = {"status": "ok", "backpressure": gate.closed,
           "backlog": None if gate.last is None else {
               "batches": gate.last.batches, "bytes": gate.last.bytes},
           "inflight": {"requests": gateway.inflight, "bytes": gateway.budget.held}}
    if gate.error is not None:
        doc.update(status="unhealthy", detail=f"cannot reach Redis: {gate.error}")
        return json_response(doc, 503)
    return json_response(doc, 200)


async def openapi_json(request: Request) -> Response:
    """GET /openapi.json: the document of farm/ingest/openapi.py, serialized once at start."""
    return Response(request.app.state.openapi, media_type="application/json")


async def http_error(request: Request, exc: HTTPException) -> Response:
    """Starlette's 404 and 405, as JSON that says where webhooks go."""
    if exc.status_code == 404:
        detail = (f"no such endpoint {request.url.path[:100]!r}; webhooks go to POST "
                  f"{GENERIC_ROUTE} or {PROVIDER_ROUTE}")
    elif exc.status_code == 405:
        detail = (f"{request.method} is not allowed on {request.url.path[:100]}; "
                  f"allowed: {exc.headers.get('Allow', '') if exc.headers else ''}")
    else:
        detail = str(exc.detail)
    return json_response({"detail": detail}, exc.status_code, exc.headers)


async def server_error(_request: Request, exc: Exception) -> Response:
    log.exception("unexpected error in the ingest gateway", exc_info=exc)
    return json_response(_internal(exc), 500)

