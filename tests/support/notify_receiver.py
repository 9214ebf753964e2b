"""A real HTTP receiver for notify tests: an aiohttp server in a thread, on its own port, that
records what it accepted and can be down, failing, or slow."""

from __future__ import annotations

import asyncio
import json
import threading
import time

from aiohttp import web

from tests.support.ports import free_port


class Receiver:
    """`start()` listens on `port` (chosen at construction, so a farm can be pointed at it
    before it is up); `answer` is the status it gives; `slow` requests sleep `slow_seconds`
    first and are not counted as accepted (the client has given up on them by then)."""

    def __init__(self, answer: int = 200):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.answer = answer
        self.slow = 0
        self.slow_seconds = 0.0
        self.attempts = 0
        self.accepted: list[dict] = []   # {"headers": ..., "body": bytes, "doc": parsed}
        self.lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self.lock:
            self.attempts += 1
            slow = self.slow > 0
            self.slow -= 1 if slow else 0
            answer = self.answer
        if slow:
            await asyncio.sleep(self.slow_seconds)
            return web.Response(status=200)
        if 200 <= answer < 300:
            with self.lock:
                self.accepted.append({"headers": dict(request.headers), "body": body,
                                      "doc": json.loads(body)})
        return web.Response(status=answer)

    def start(self) -> Receiver:
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/hook", self._handle)
            self._runner = web.AppRunner(app)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            self._loop.run_until_complete(site.start())
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        assert ready.wait(30), "the test receiver did not start"
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._loop = None

    def alerts(self) -> list[dict]:
        with self.lock:
            return [a for r in self.accepted for a in r["doc"]["alerts"]]

    def wait_for_alerts(self, n: int, timeout: float = 120) -> list[dict]:
        """Wait until at least n alerts were accepted (bounds the wait, asserts nothing)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.alerts()) < n:
            time.sleep(0.1)
        return self.alerts()
