"""Connecting to Redis, and saying clearly when it cannot be reached."""

from __future__ import annotations

import redis


class RedisUnavailable(Exception):
    """Redis cannot be reached; str() is one line that says what to check."""


def connect(url: str, check: bool = True) -> redis.Redis:
    """A client for url (redis://, rediss:// or unix://). With check, PING it first and raise
    RedisUnavailable with a readable reason if that fails."""
    try:
        client = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=5,
                                      health_check_interval=30)
    except ValueError as exc:
        raise RedisUnavailable(
            f"[redis] url {url!r} is not a Redis URL ({exc}); write for example "
            f"redis://127.0.0.1:6379/0 or unix:///path/redis.sock") from None
    if check:
        try:
            client.ping()
        except redis.RedisError as exc:
            raise RedisUnavailable(describe(url, exc)) from None
    return client


def describe(url: str, exc: Exception) -> str:
    reason = str(exc).rstrip(". ")
    return (f"cannot reach Redis at {url}: {reason}. Check [redis] url (or FARM_REDIS_URL) and "
            f"that the server is running; leave the url empty to let farm run its own Redis.")
