"""A small HTTP/1.1 client for the HTTP producer: keep-alive connections to one server, each
request one pre-rendered write, each answer parsed by httptools (C).

It does only what the producer needs (POST with a fixed set of headers, status, Retry-After
and body of the answer), at a fraction of a general client's CPU: aiohttp spent about as much
CPU per webhook as the gateway taking it (docs/performance.md#the-http-load-generator).

Outcomes a caller must tell apart: NotSent (no connection could be made: sending again is
safe), Unanswered (the request went out, or may have, and no complete answer came back: the
server may have stored it).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from urllib.parse import urlsplit

import httptools


class NotSent(Exception):
    """No connection could be made; the request never left."""


class Unanswered(Exception):
    """The request was (or may have been) sent, and no complete answer came back."""


class Answer:
    __slots__ = ("status", "retry_after", "body", "close")

    def __init__(self):
        self.status = 0
        self.retry_after: bytes | None = None
        self.body = b""
        self.close = False     # the server will close the connection after this answer


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self):
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: Answer | None = None
        self.waiter: asyncio.Future | None = None
        self.parts: list[bytes] = []
        self.header: bytes = b""
        self.lost = False
        self.idle_since = 0.0

    # asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(Unanswered(f"unreadable answer: {exc}"))
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail(Unanswered(f"connection lost before the whole answer: {exc or 'closed'}"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"retry-after":
            self.answer.retry_after = value
        elif name == b"connection" and value.lower() == b"close":
            self.answer.close = True

    def on_body(self, body: bytes) -> None:
        self.parts.append(body)

    def on_message_complete(self) -> None:
        answer, waiter = self.answer, self.waiter
        self.answer = self.waiter = None
        answer.status = self.parser.get_status_code()
        answer.body = b"".join(self.parts)
        self.parts = []
        if not self.parser.should_keep_alive():
            answer.close = True
        if waiter is not None and not waiter.done():
            waiter.set_result(answer)

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def send(self, request: bytes) -> asyncio.Future:
        self.answer = Answer()
        self.parts = []
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiter


class Client:
    """POSTs to one http(s):// server over at most `size` keep-alive connections; a connection
    idle for keepalive_seconds is closed rather than reused (the server may be closing it)."""

    def __init__(self, url: str, headers: dict[str, str], size: int, keepalive_seconds: float,
                 timeout: float):
        parts = urlsplit(url)
        self.tls = ssl.create_default_context() if parts.scheme == "https" else None
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.tls else 80)
        self.base = parts.path.rstrip("/")
        host = f"{self.host}:{self.port}" if parts.port else self.host
        fixed = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.fixed = f"Host: {host}\r\n{fixed}".encode("latin-1")
        self.size = size
        self.keepalive_seconds = keepalive_seconds
        self.timeout = timeout
        self.idle: list[_Connection] = []

    def request_head(self, path: str) -> bytes:
        """The request line and fixed headers for POST path, up to Content-Length's value."""
        return (f"POST {self.base}{path} HTTP/1.1\r\n".encode("latin-1") + self.fixed
                + b"Content-Length: ")

    async def post(self, head: bytes, body: bytes) -> Answer:
        """Send `head` (from request_head) with body; the answer. Raises NotSent or
        Unanswered."""
        connection = await self._connection()
        request = b"%s%d\r\n\r\n%s" % (head, len(body), body)
        try:
            async with asyncio.timeout(self.timeout):
                answer = await connection.send(request)
        except TimeoutError:
            connection.transport.close()
            raise Unanswered(f"no answer within {self.timeout:g} s") from None
        except Unanswered:
            connection.transport.close()
            raise
        if answer.close or connection.lost:
            connection.transport.close()
        else:
            connection.idle_since = time.monotonic()
            self.idle.append(connection)
        return answer

    async def _connection(self) -> _Connection:
        now = time.monotonic()
        while self.idle:
            connection = self.idle.pop()
            if not connection.lost and now - connection.idle_since < self.keepalive_seconds:
                return connection
            connection.transport.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                _transport, connection = await loop.create_connection(
                    _Connection, self.host, self.port, ssl=self.tls)
        except (OSError, TimeoutError) as exc:
            raise NotSent(f"cannot connect to {self.host}:{self.port}: "
                          f"{type(exc).__name__}: {exc}") from None
        return connection

    def close(self) -> None:
        for connection in self.idle:
            connection.transport.close()
        self.idle.clear()
