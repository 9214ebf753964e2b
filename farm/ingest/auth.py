"""API keys: how they are made, stored (as SHA-256 hashes) and presented, and which tenant a key
belongs to.

A key is presented the ways Keep accepts one (docs/keep-compatibility.md#processing-order): the
`X-API-KEY` header, the `api_key` query parameter, HTTP Basic with the key as the password
(Alertmanager's templates use the user name `api_key`), `Authorization: Bearer <key>` or
`Authorization: Digest <key>`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from urllib.parse import parse_qsl

KEY_PREFIX = "farm_"
ANONYMOUS_TENANT = "default"


def new_key() -> str:
    """A fresh random API key (256 bits), recognisable by its prefix in logs and configs."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The form a key is stored in: "sha256:<hex digest>"."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    """Tenant lookup by presented key, from the [ingest.keys] table.

    The table is indexed by digest: a lookup's timing can reveal at most something about the
    SHA-256 of the guess, which is of no use without a preimage; the final comparison of the
    digests is constant-time all the same. Keys found valid are remembered (at most
    REMEMBERED of them), so that a client's every request does not hash its key again: a
    guess reaches a comparison with a remembered key only if its string hash (SipHash with
    this process's secret seed) equals that key's, so this lookup tells a guesser nothing
    either. Invalid keys are never remembered: a flood of them cannot push valid ones out.
    """

    REMEMBERED = 4096

    def __init__(self, table: dict[str, list[str]]):
        self._known: dict[str, str] = {}
        self._by_digest: dict[bytes, tuple[bytes, str]] = {}
        for tenant, entries in table.items():
            for entry in entries:
                digest = bytes.fromhex(entry.removeprefix("sha256:"))
                self._by_digest[digest] = (digest, tenant)

    def __len__(self) -> int:
        return len(self._by_digest)

    def tenant_for(self, key: str) -> str | None:
        """The tenant owning key, or None."""
        tenant = self._known.get(key)
        if tenant is not None:
            return tenant
        digest = hashlib.sha256(key.encode()).digest()
        found = self._by_digest.get(digest)
        if found is not None and hmac.compare_digest(found[0], digest):
            if len(self._known) >= self.REMEMBERED:
                self._known.clear()
            self._known[key] = found[1]
            return found[1]
        return None


def presented_key(headers, query_string: bytes) -> str | None:
    """The key a request presents, or None; `headers` is a case-insensitive mapping."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme in ("bearer", "digest") and value:
            return value
        if scheme == "basic" and value:
            try:
                decoded = base64.b64decode(value, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            _user, sep, password = decoded.partition(":")
            return password if sep and password else None
    if query_string and b"api_key=" in query_string:
        for name, value in parse_qsl(query_string.decode("latin-1")):
            if name == "api_key" and value:
                return value
    return None
