"""One request to the receiver: the body, its headers and signature, and what counts as delivered.

aiohttp (a runtime dependency already, used by the load generator's HTTP producer) because its
`ClientTimeout(total=...)` bounds the whole exchange, connect to the last byte of the answer: a
receiver that trickles its reply is cut as surely as one that never answers. urllib3's timeouts
apply to each socket operation, so a trickling receiver could hold the sender indefinitely.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import aiohttp

SIGNATURE_HEADER = "X-Farm-Signature-256"
DELIVERY_HEADER = "X-Farm-Delivery"


def signature(secret: str, body: bytes) -> str:
    """The signature header's value: sha256=<hex HMAC-SHA256 of the exact body bytes>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery_id(body: bytes) -> str:
    """Names one request: the same entries give the same id on every retry and after a sender
    restart, so a receiver can drop a request it already handled."""
    return hashlib.sha256(body).hexdigest()[:32]


@dataclass
class Attempt:
    delivered: bool
    problem: str = ""          # for the log and the dead letter: "HTTP 503", "timeout after 10s"
    label: str = ""            # for the failures metric: the status code or the error's kind


class Receiver:
    """The configured receiver: URL, headers, secret, timeout. Use within one event loop."""

    def __init__(self, url: str, headers: dict[str, str], secret: str, timeout: float):
        self.url = url
        self.headers = {"Content-Type": "application/json", "User-Agent": "farm-notify",
                        **headers}
        self.secret = secret
        self.timeout = timeout
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    def headers_for(self, body: bytes) -> dict[str, str]:
        headers = {**self.headers, DELIVERY_HEADER: delivery_id(body)}
        if self.secret:
            headers[SIGNATURE_HEADER] = signature(self.secret, body)
        return headers

    async def post(self, body: bytes) -> Attempt:
        """One attempt; never raises for what the receiver or the network does."""
        try:
            async with self.session.post(self.url, data=body,
                                         headers=self.headers_for(body)) as response:
                await response.read()  # let the connection be reused
                if 200 <= response.status < 300:
                    return Attempt(True)
                return Attempt(False, f"HTTP {response.status} from {self.url}",
                               str(response.status))
        except TimeoutError:
            return Attempt(False, f"no answer from {self.url} within {self.timeout:g}s",
                           "timeout")
        except aiohttp.ClientError as exc:
            return Attempt(False, f"{self.url}: {type(exc).__name__}: {exc}", "connection")
