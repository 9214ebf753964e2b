"""The connection a worker's thread holds to a single Redis: pipelined requests that skip
redis-py's per-call machinery, and calls sent ahead, whose replies are read later.

A worker sends a few requests per batch, so they are packed by hiredis and written at once on
a connection taken from the client's pool by its first caller thread and kept (another thread
borrows one from the pool). A call sent ahead (`send_ahead`) runs in Redis while the worker goes
on with other work: Redis answers a connection in order, so its replies are read before those
of the next request on the connection, or when the caller asks for them (`Ahead.replies`).
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from dataclasses import dataclass, field

import hiredis
import redis
from redis.cluster import RedisCluster


@dataclass
class Held:
    owner: int  # the thread that took the connection
    conn: object
    owed: deque[Ahead] = field(default_factory=deque)  # sent ahead, replies not read yet


_HELD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Ahead:
    """The replies of commands sent ahead (raw, an error reply as its exception), once read."""

    def __init__(self, held: Held | None, count: int, replies: list | None = None):
        self._held = held
        self._count = count
        self._replies = replies
        self._error: BaseException | None = None

    def replies(self) -> list:
        """Wait for the replies if they have not been read yet; raises what broke the connection
        before they arrived (whether the commands ran is then unknown)."""
        while self._replies is None and self._error is None:
            _read_owed(self._held, upto=self)
        if self._error is not None:
            raise self._error
        return self._replies


def held_by_this_thread(client) -> Held | None:
    """The client's held connection if this thread holds it (taking it on first use); None on a
    cluster or in another thread."""
    if isinstance(client, RedisCluster):
        return None
    held = _HELD.get(client)
    if held is None:
        held = _HELD[client] = Held(threading.get_ident(),
                                    client.connection_pool.get_connection())
    return held if held.owner == threading.get_ident() else None


def holds_one(client) -> bool:
    """Whether this thread has taken the client's held connection already."""
    held = _HELD.get(client)
    return held is not None and held.owner == threading.get_ident()


def request(client: redis.Redis, commands: list[tuple | list]) -> list:
    """Send commands (each its whole argument list) to a single Redis as one pipelined request
    and return their raw replies in order (no response callbacks; an error reply as its
    exception, not raised). Replies owed to calls sent ahead are read first. A connection error
    is raised, not retried (the caller cannot know what ran), and the next request reconnects."""
    held = held_by_this_thread(client)
    if held is not None:
        return _send(held, commands)
    pool = client.connection_pool
    borrowed = Held(threading.get_ident(), pool.get_connection())
    try:
        return _send(borrowed, commands)
    finally:
        pool.release(borrowed.conn)


def send_ahead(client: redis.Redis, commands: list[tuple | list]) -> Ahead:
    """Write commands on the held connection and return at once; their replies are read with the
    next request's, or by Ahead.replies(). In a thread that does not hold the connection they
    run at once, as a request."""
    held = held_by_this_thread(client)
    if held is None:
        return Ahead(None, len(commands), request(client, commands))
    ahead = Ahead(held, len(commands))
    _write(held, commands)
    held.owed.append(ahead)
    return ahead


def _write(held: Held, commands: list[tuple | list]) -> None:
    try:
        held.conn.send_packed_command(
            [b"".join([hiredis.pack_command(tuple(c)) for c in commands])])
    except BaseException as exc:
        _broken(held, exc)
        raise


def _read(held: Held, count: int) -> list:
    replies = []
    for _ in range(count):
        try:
            replies.append(held.conn.read_response())
        except redis.ResponseError as exc:
            replies.append(exc)
    return replies


def _read_owed(held: Held, upto: Ahead | None = None) -> None:
    """Read the replies owed to calls sent ahead, oldest first: all of them, or up to `upto`."""
    try:
        while held.owed:
            ahead = held.owed[0]
            ahead._replies = _read(held, ahead._count)
            held.owed.popleft()
            if ahead is upto:
                return
    except BaseException as exc:
        _broken(held, exc)
        raise


def _send(held: Held, commands: list[tuple | list]) -> list:
    _write(held, commands)
    _read_owed(held)
    try:
        return _read(held, len(commands))
    except BaseException as exc:
        _broken(held, exc)
        raise


def _broken(held: Held, exc: BaseException) -> None:
    """The connection can no longer be trusted to line replies up with their commands: drop it
    (the next request reconnects) and fail every call still owed a reply."""
    held.conn.disconnect()
    error = exc if isinstance(exc, redis.RedisError) else redis.ConnectionError(
        f"the connection to Redis was dropped before a reply came ({type(exc).__name__})")
    while held.owed:
        held.owed.popleft()._error = error


def command(client, *args):
    """One command's reply, over request()'s connection on a single Redis; raises an error
    reply."""
    if isinstance(client, RedisCluster):
        return client.execute_command(*args)
    [reply] = request(client, [args])
    if isinstance(reply, Exception):
        raise reply
    return reply
