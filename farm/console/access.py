"""Who may use the console: reading needs the [console] key when one is set, and whenever the
supervisor's HTTP server listens beyond loopback; writing (replaying dead letters) needs the
[console] admin key, typed into the form of the action itself, on every action.

A key opens the console once (the login form, or an X-API-KEY / Bearer header, or `?api_key=`)
and is then carried by an HttpOnly, SameSite=Strict cookie limited to /ui. Keys are stored in
the config only as SHA-256 hashes and compared in constant time. The admin key is never kept in
a cookie, so another site cannot make a browser replay letters on its owner's behalf.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request

from farm.config import Config
from farm.ingest.auth import presented_key
from farm.ingest.process import is_loopback

COOKIE = "farm_console"


def listens_on_loopback(address: str) -> bool:
    """Whether HOST:PORT listens only on this machine."""
    return is_loopback(address.rpartition(":")[0].strip("[]"))


def matches(key: str | None, stored: str) -> bool:
    """Whether `key` hashes to `stored` ("sha256:<hex>"); False when either is empty."""
    if not key or not stored:
        return False
    digest = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return hmac.compare_digest(digest, stored)


class Access:
    """The console's key rules for one configuration."""

    def __init__(self, cfg: Config):
        self.key = cfg.console.key
        self.admin_key = cfg.console.admin_key
        self.address = cfg.supervisor.http
        self.loopback = listens_on_loopback(self.address)

    @property
    def closed_reason(self) -> str | None:
        """Why nobody can read the console without changing the config, or None."""
        if self.key or self.loopback:
            return None
        return (f"The console is closed: [supervisor] http listens on {self.address}, beyond "
                f"loopback, and [console] key is not set. Run `farm console key`, put the hash "
                f"it prints in [console] key, and restart the farm.")

    def presented(self, request: Request) -> str | None:
        return (presented_key(request.headers, request.url.query.encode())
                or request.cookies.get(COOKIE))

    def may_read(self, request: Request) -> bool:
        if not self.key:
            return self.loopback
        return matches(self.presented(request), self.key)

    def may_read_key(self, key: str) -> bool:
        return matches(key, self.key)

    def may_write(self, typed_admin_key: str | None) -> bool:
        return matches(typed_admin_key, self.admin_key)

    @property
    def writable(self) -> bool:
        return bool(self.admin_key)
