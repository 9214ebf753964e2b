"""Connecting to Redis, and saying clearly when it cannot be reached."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

import redis
from redis.cluster import ClusterNode, RedisCluster

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


class RedisUnavailable(Exception):
    """Redis cannot be reached; str() is one line that says what to check."""


def is_cluster_url(url: str | None) -> bool:
    return bool(url) and url.split("://", 1)[0].lower() in CLUSTER_SCHEMES


@dataclass(frozen=True)
class ClusterURL:
    """`redis+cluster://[user:pass@]h1:p1,h2:p2,...` (or `rediss+cluster://` for TLS)."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None
    tls: bool


def parse_cluster_url(url: str) -> ClusterURL:
    """Read a cluster URL; raise RedisUnavailable with one line saying what is wrong."""
    scheme, _, rest = url.partition("://")
    userinfo, _, hosts = rest.rpartition("@")
    hosts = hosts.rstrip("/")
    nodes = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise RedisUnavailable(
                f"[redis] url {url!r}: {item.strip() or 'an empty entry'!r} is not host:port; "
                f"write for example redis+cluster://10.0.0.1:7000,10.0.0.2:7000")
        nodes.append((host, int(port)))
    user, _, password = userinfo.partition(":")
    return ClusterURL(tuple(nodes), unquote(user) or None,
                      unquote(password) if userinfo else None,
                      scheme.lower() == "rediss+cluster")


def connect_cluster(url: str) -> RedisCluster:
    """A Redis Cluster client for a cluster URL; it asks the nodes for the slot map at once,
    so an unreachable cluster raises RedisUnavailable here."""
    spec = parse_cluster_url(url)
    try:
        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in spec.nodes],
                            username=spec.username, password=spec.password, ssl=spec.tls,
                            socket_timeout=30, socket_connect_timeout=5,
                            health_check_interval=30)
    except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
        raise RedisUnavailable(describe(url, exc)) from None


def connect_async(url: str, max_connections: int = 0, timeout: float = 30):
    """A redis.asyncio client for url (a cluster URL too); it connects on first use."""
    from redis import asyncio as aioredis
    from redis.asyncio.cluster import ClusterNode as AsyncNode
    from redis.asyncio.cluster import RedisCluster as AsyncCluster

    if is_cluster_url(url):
        spec = parse_cluster_url(url)
        extra = {"max_connections": max_connections} if max_connections else {}
        return AsyncCluster(startup_nodes=[AsyncNode(h, p) for h, p in spec.nodes],
                            username=spec.username, password=spec.password, ssl=spec.tls,
                            socket_timeout=timeout, socket_connect_timeout=5, **extra)
    try:
        if max_connections:
            pool = aioredis.BlockingConnectionPool.from_url(
                url, max_connections=max_connections, timeout=10, socket_timeout=timeout,
                socket_connect_timeout=5, health_check_interval=30)
            return aioredis.Redis(connection_pool=pool)
        return aioredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=5,
                                       health_check_interval=30)
    except ValueError as exc:
        raise RedisUnavailable(_not_a_url(url, exc)) from None


def _not_a_url(url: str, exc: Exception) -> str:
    return (f"[redis] url {url!r} is not a Redis URL ({exc}); write for example "
            f"redis://127.0.0.1:6379/0, unix:///path/redis.sock or "
            f"redis+cluster://host1:7000,host2:7000")


def connect(url: str, check: bool = True):
    """A client for url (redis://, rediss://, unix://, or redis+cluster:// / rediss+cluster://
    for a Redis Cluster). With check, PING it first and raise RedisUnavailable with a readable
    reason if that fails."""
    if is_cluster_url(url):
        client = connect_cluster(url)
        if check:
            try:
                client.ping()
            except redis.RedisError as exc:
                raise RedisUnavailable(describe(url, exc)) from None
        return client
    try:
        client = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=5,
                                      health_check_interval=30)
    except ValueError as exc:
        raise RedisUnavailable(_not_a_url(url, exc)) from None
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


def run_scripts(client, calls: list[tuple]) -> list:
    """Run several (Script, keys, args) calls in one pipeline (on a cluster: one request per
    node) and return their replies in order; a single call goes without a pipeline. Calls that
    met a node without the script (NOSCRIPT: they did not run) are sent again after loading it,
    and only those. Raises the first other error."""
    if len(calls) == 1:
        script, keys, args = calls[0]
        return [script(keys=keys, args=args)]
    replies: list = [None] * len(calls)
    todo = list(range(len(calls)))
    for attempt in (1, 2):
        pipe = client.pipeline(transaction=False)
        cluster = isinstance(client, RedisCluster)
        for i in todo:
            script, keys, args = calls[i]
            # redis-py's cluster pipeline refuses evalsha() by name, not the command itself;
            # and given no target it asks a node for EVALSHA's keys (COMMAND GETKEYS) once per
            # call, so the node is named here from the first key's slot.
            target = {"target_nodes": client.get_node_from_key(keys[0])} if cluster else {}
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args, **target)
        got = pipe.execute(raise_on_error=False)
        missing = []
        for i, reply in zip(todo, got, strict=True):
            if isinstance(reply, redis.exceptions.NoScriptError) and attempt == 1:
                missing.append(i)
            elif isinstance(reply, Exception):
                if cluster:  # a moved slot or a failed-over master: ask for the map again
                    client.nodes_manager.initialize()
                raise reply
            else:
                replies[i] = reply
        if not missing:
            break
        for script in {calls[i][0].sha: calls[i][0] for i in missing}.values():
            client.script_load(script.script)
        todo = missing
    return replies


def wait_replicas(client, replicas: int, timeout_ms: int) -> int:
    """Redis WAIT for every write this client made so far: how many replicas confirmed them
    (the fewest over the masters, on a cluster). WAIT counts only its own connection's writes
    on the master it is sent to, so on a cluster it goes to every master over the connection
    this (single-threaded) client used there: its pool per node hands out that one connection
    again. Masters in turn; each answers at once when its replicas are up to date."""
    if not isinstance(client, RedisCluster):
        return client.wait(replicas, timeout_ms)
    return min((client.get_redis_connection(node).wait(replicas, timeout_ms)
                for node in client.get_primaries()), default=0)


def unlink_all(client, keys: list[str]) -> None:
    """UNLINK keys wherever they live: one command per hash slot, one request per node."""
    if not keys:
        return
    from redis.crc import key_slot

    by_slot: dict[int, list[str]] = {}
    for key in keys:
        by_slot.setdefault(key_slot(key.encode()), []).append(key)
    pipe = client.pipeline(transaction=False)
    for slot_keys in by_slot.values():
        # by command, not pipe.unlink(): redis-py's cluster pipeline refuses several keys there
        # even when they share a slot
        pipe.execute_command("UNLINK", *slot_keys)
    pipe.execute()
