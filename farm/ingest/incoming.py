"""One webhook request as the gateway reads it, straight from the ASGI scope: its headers
decoded once into a dict, its query string, its body read from `receive`.

The webhook route is the gateway's hot path, so it does without Starlette's Request (whose
header lookups decode every header again, and whose body stream is an async generator); the
other routes still go through Starlette (farm/ingest/app.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from farm.ingest.errors import Refused
from farm.ingest.limits import Hold, too_large

Receive = Callable[[], Awaitable[dict]]


class ClientGone(Exception):
    """The client disconnected before its whole body arrived."""


class Incoming:
    """What the steps of farm/ingest/gateway.py read of a request. `headers` has lower-case
    names; of a header sent twice, the first one counts (as with Starlette's Headers.get)."""

    __slots__ = ("scope", "receive", "headers", "tenant")

    def __init__(self, scope: dict, receive: Receive):
        self.scope = scope
        self.receive = receive
        self.headers = {name.decode("latin-1"): value.decode("latin-1")
                        for name, value in reversed(scope["headers"])}
        self.tenant = "-"   # until authenticated

    @property
    def query_string(self) -> bytes:
        return self.scope["query_string"]

    def query_params(self) -> dict[str, str]:
        """The query parameters (the first of a repeated name), for the few requests that
        carry any."""
        params: dict[str, str] = {}
        for name, value in parse_qsl(self.scope["query_string"].decode("latin-1"),
                                     keep_blank_values=True):
            params.setdefault(name, value)
        return params

    def starlette_headers(self):
        """The headers as Starlette's case-insensitive mapping (the multipart parser's)."""
        from starlette.datastructures import Headers

        return Headers(raw=self.scope["headers"])

    async def body(self, limit: int, hold: Hold) -> bytes:
        """The whole body, refusing (413) as soon as it exceeds limit (whatever was declared)
        and (503) when the bytes read so far no longer fit in `hold`'s budget. Raises
        ClientGone if the client disconnects first."""
        parts: list[bytes] = []
        size = 0
        receive = self.receive
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientGone()
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise too_large(limit)
                hold.cover(size)
                parts.append(chunk)
            if not message.get("more_body", False):
                break
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)


def refused_as_disconnect() -> Refused:
    return Refused(400, "the client went away before sending the whole body", "disconnected")
