"""Limits on the gateway's HTTP connections that uvicorn does not keep: how long a client may take
over a request's headers and over the whole request, and how many connections one process holds.
Without them a client that trickles its bytes (slowloris) holds a connection, with the memory and
file descriptor behind it, for as long as it likes.

uvicorn's httptools protocol is subclassed rather than wrapped in ASGI middleware because only the
protocol sees a connection before its headers are complete; its parser callbacks say where a
request stands. The body's own limit is kept by the app (farm/ingest/gateway.py), which can still
answer 408 while it reads; here the whole-request limit also ends a body that nobody reads any
more (a request answered before its body was read, whose client keeps trickling it).

The hot path: a request that arrives in one read (a webhook of a few KB) begins and ends between
two checks of `_watch`, so it arms no timer and reads no clock, and it is marked BODY_RECEIVED
so that the app sets no timer either; only a connection's first request, counted from the
connection, holds a timer until its headers are in. An answer's head and body leave in one
write (OneWrite), not two: on loopback each write is a send() that also runs the receiving
side's TCP stack, about a tenth of a webhook's CPU in the gateway. Relies on HttpToolsProtocol's
parser callbacks and its `cycle`, `flow`, `connections`, `scope`, `loop` and `transport`
attributes, and on its cycle writing an answer through `cycle.transport`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Keys in a request's scope["state"], for the app. REQUEST_STARTED: the event loop's time at
# the read that brought the request's first byte (the connection's opening, for its first
# request), set once the request spans reads. BODY_RECEIVED: True once the body is all in.
REQUEST_STARTED = "farm_request_started"
BODY_RECEIVED = "farm_body_received"
CONNECTIONS_RETRY_SECONDS = 1

_IDLE, _HEADERS, _BODY = 0, 1, 2  # what the parser waits for


@dataclass(frozen=True)
class ConnectionLimits:
    header_seconds: float
    request_seconds: float
    max_connections: int

    @property
    def header_limit(self) -> tuple[float, str]:
        """Seconds a request's headers may take, and the key that sets them: the whole-request
        limit bounds the headers too."""
        if self.request_seconds < self.header_seconds:
            return self.request_seconds, "request_timeout_seconds"
        return self.header_seconds, "header_timeout_seconds"


def error_response(status: int, detail: str, headers: tuple[str, ...] = ()) -> bytes:
    """A complete HTTP/1.1 answer in the gateway's error style that closes the connection."""
    body = orjson.dumps({"detail": detail})
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "content-type: application/json",
            f"content-length: {len(body)}", "connection: close", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class OneWrite:
    """The connection's transport for uvicorn's request cycle: a response head is held until
    its body is written (in the same step of the app, as every route here answers), then both
    go in one write. A head that no body follows in that step is written at the end of it."""

    __slots__ = ("transport", "loop", "head")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self.transport = transport
        self.loop = loop
        self.head: bytes | None = None

    def write(self, data: bytes) -> None:
        head = self.head
        if head is None:
            self.head = data
            self.loop.call_soon(self.flush)
        else:
            self.head = None
            self.transport.write(head + data)

    def flush(self) -> None:
        head = self.head
        if head is not None:
            self.head = None
            self.transport.write(head)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str):
        return getattr(self.transport, name)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with [ingest] header_timeout_seconds,
    request_timeout_seconds and max_connections. `on_cut(reason)` is told of each connection
    refused ("too_many_connections") or cut while its headers were coming ("timeout")."""

    def __init__(self, *args, limits: ConnectionLimits, on_cut: Callable[[str], None],
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.on_cut = on_cut
        self._phase = _IDLE
        self._begun = False           # a byte of the current request has arrived
        self._started: float | None = None   # None: read the clock if the request spans reads
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._header_seconds = limits.header_limit[0]
        self._one_write: OneWrite | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse()
            return
        self._phase = _HEADERS
        self._started = self.loop.time()
        self._watch()

    def _refuse(self) -> None:
        # Answered before any request: a client that has not sent yet reads a 503 it can retry
        # on, rather than a bare close whose outcome it cannot know.
        self.on_cut("too_many_connections")
        self.transport.write(error_response(
            503, f"this gateway process holds {self.limits.max_connections} connections "
                 f"already ([ingest] max_connections); retry after "
                 f"{CONNECTIONS_RETRY_SECONDS}s",
            (f"retry-after: {CONNECTIONS_RETRY_SECONDS}",)))
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._disarm()

    def data_received(self, data: bytes) -> None:
        HttpToolsProtocol.data_received(self, data)
        self._watch()

    def on_message_begin(self) -> None:
        HttpToolsProtocol.on_message_begin(self)
        if self._phase != _HEADERS:
            # Not a new connection's first request, whose clock started with the connection.
            self._started = None
        self._phase = _HEADERS
        self._begun = True

    def on_headers_complete(self) -> None:
        HttpToolsProtocol.on_headers_complete(self)
        self._phase = _BODY
        if self.cycle is not None and self.cycle.transport is self.transport:
            if self._one_write is None:
                self._one_write = OneWrite(self.transport, self.loop)
            self.cycle.transport = self._one_write

    def on_message_complete(self) -> None:
        HttpToolsProtocol.on_message_complete(self)
        self.scope["state"][BODY_RECEIVED] = True
        self._phase = _IDLE
        self._begun = False

    def _watch(self) -> None:
        """Arm the timer for what the parser still waits for, after each read."""
        phase = self._phase
        if phase == _IDLE or self.transport.is_closing():
            deadline = None
            if self._idle_untimed():
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler)
        else:
            if self._started is None:
                self._started = self.loop.time()
            if phase == _HEADERS:
                deadline = self._started + self._header_seconds
            else:
                deadline = self._started + self.limits.request_seconds
                self.scope["state"][REQUEST_STARTED] = self._started
        if deadline != self._deadline:
            self._disarm()
            if deadline is not None:
                self._deadline = deadline
                self._timer = self.loop.call_at(deadline, self._on_deadline)

    def _idle_untimed(self) -> bool:
        """Whether the connection idles with no timer: its last request is answered and read
        in full, but uvicorn's keep-alive timer, armed when the answer went out, was disarmed
        by bytes that came after it (the rest of a body answered before it was read). Left so,
        the connection would stay open however long it idles."""
        return (self.cycle is not None and self.cycle.response_complete
                and self.timeout_keep_alive_task is None and not self.transport.is_closing())

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._deadline = None

    def _on_deadline(self) -> None:
        self._timer = None
        self._deadline = None
        if self.transport.is_closing():
            return
        answering = self.cycle is not None and not self.cycle.response_complete
        if self._phase == _HEADERS:
            self.on_cut("timeout")
        if answering:
            # An earlier request (pipelined), or this one's body being read by the app, which
            # answers 408 itself within the same limit: end the connection after that answer.
            self.cycle.keep_alive = False
            self.flow.pause_reading()
        elif self._phase == _HEADERS and self._begun:
            seconds, key = self.limits.header_limit
            self.transport.write(error_response(
                408, f"the request's headers did not arrive within [ingest] {key} "
                     f"({seconds:g} s); nothing was kept, send it again"))
            self.transport.close()
        else:
            # A connection that never sent a byte, or the body of a request already answered.
            self.transport.close()
