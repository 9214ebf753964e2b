"""Connecting to Redis, and saying clearly when it cannot be reached."""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from farm.held_connection import command, holds_one, request, send_ahead

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")

# What a failed request of the asyncio client can raise. Besides RedisError, redis-py's asyncio
# cluster client raises AttributeError or RuntimeError from a connection that another task tears
# down while a failover reshapes the cluster ("'NoneType' object has no attribute 'writelines'",
# "unable to perform operation on <TCPTransport closed=True ...>"; redis/redis-py#3815 and #3835
# report the same class of fault). To a caller they mean the same: Redis could not be asked this
# time; answer 503, or try again.
REDIS_TROUBLE = (redis.RedisError, AttributeError, RuntimeError)


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
    else:
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
    """Run several (Script, keys, args) calls (or (None, keys, command) for a plain command) in
    one pipeline (on a cluster: one request per node) and return their replies in order; a
    single call goes without a pipeline. Calls that met a node without the script (NOSCRIPT:
    they did not run) are sent again after loading it, and only those. Raises the first other
    error.

    The client's riders (Riders.of) bound for the nodes these calls reach (on a single Redis:
    all of them) go in the same requests, so they cost no round trip of their own."""
    return send_scripts(client, calls)()


def send_scripts(client, calls: list[tuple], ride: bool = True) -> Callable[[], list]:
    """run_scripts, but on a single Redis the calls (and their riders) are written now and
    read later (farm/held_connection.py): the caller does other work while they run. Returns
    the function that gives their replies (waiting for them if need be), answers the riders
    and raises the first error. On a cluster the calls run at once. With `ride` False no
    riders go along."""
    riders = _RIDERS.get(client) if ride else None
    riding = riders.take_for(client, [keys[0] for _, keys, _ in calls]) if riders else []
    everything = [*calls, *((r.script, r.keys, r.args) for r in riding)]
    if isinstance(client, RedisCluster):
        if len(calls) == 1 and not riding:
            script, keys, args = calls[0]
            reply = (client.execute_command(*args) if script is None
                     else script(keys=keys, args=args))
            return lambda: [reply]
        replies = _pipelined(client, everything)
        return lambda: _answered(client, riders, riding, replies, len(calls))
    ahead = send_ahead(client, [_command(*call) for call in everything])

    return lambda: _answered(client, riders, riding, _loaded(client, ahead, everything),
                             len(calls))


def _loaded(client, ahead, calls: list[tuple]) -> list:
    """The replies of calls sent ahead, those that met a server without their script (they did
    not run) sent again after loading it."""
    replies = ahead.replies()
    missing = [i for i, reply in enumerate(replies)
               if isinstance(reply, redis.exceptions.NoScriptError)]
    if missing:
        for i, reply in zip(missing, _pipelined(client, [calls[i] for i in missing]),
                            strict=True):
            replies[i] = reply
    return replies


def _answered(client, riders: Riders | None, riding: list[Rider], replies: list,
              count: int) -> list:
    """The first `count` replies, once the riders have theirs; raises the first error."""
    done = [] if not riding else riders.answer(client, riding, replies[count:])
    failed = [r for r in replies[:count] if isinstance(r, Exception)] + done
    if failed:
        raise failed[0]
    return replies[:count]


def scripts_ahead(client, calls: list[tuple]) -> Callable[[], list]:
    """send_scripts for a batch's correlation calls, whose replies the worker reads only after
    it has taken and prepared its next batch. On a single Redis no riders go along: the next
    take among them would be answered that late. On a cluster the calls run at once, riders
    and all."""
    return send_scripts(client, calls, ride=isinstance(client, RedisCluster))


def _evalsha(script, keys: list, args: list) -> tuple:
    """A script call as the command request() sends."""
    return ("EVALSHA", script.sha, len(keys), *keys, *args)


def _command(script, keys: list, args: list) -> tuple | list:
    """A call (a script's, or a plain command when `script` is None) as request() sends it."""
    return args if script is None else _evalsha(script, keys, args)


def _pipelined(client, calls: list[tuple]) -> list:
    """Replies (or the error each met) of calls, where a call is (Script, keys, args) or (None,
    keys, command) for a plain command (its whole argument list) on `keys`, of one slot."""
    replies: list = [None] * len(calls)
    todo = list(range(len(calls)))
    cluster = isinstance(client, RedisCluster)
    for attempt in (1, 2):
        if cluster:
            got = _cluster_pipeline(client, [calls[i] for i in todo])
        else:
            got = request(client, [_command(*calls[i]) for i in todo])
        missing = []
        for i, reply in zip(todo, got, strict=True):
            if isinstance(reply, redis.exceptions.NoScriptError) and attempt == 1:
                missing.append(i)
            else:
                replies[i] = reply
        if not missing:
            break
        for script in {calls[i][0].sha: calls[i][0] for i in missing}.values():
            client.script_load(script.script)
        todo = missing
    if cluster and any(isinstance(r, Exception) for r in replies):
        client.nodes_manager.initialize()  # a moved slot or a failed-over master: ask again
    return replies


def _cluster_pipeline(client: RedisCluster, calls: list[tuple]) -> list:
    pipe = client.pipeline(transaction=False)
    for script, keys, args in calls:
        # redis-py's cluster pipeline refuses evalsha() by name, not the command itself; and
        # given no target it asks a node for EVALSHA's keys (COMMAND GETKEYS) once per call, so
        # the node is named here from the first key's slot.
        target = {"target_nodes": client.get_node_from_key(keys[0])}
        if script is None:
            pipe.execute_command(*args, **target)
        else:
            pipe.execute_command(*_evalsha(script, keys, args), **target)
    return pipe.execute(raise_on_error=False)


def wait_replicas(client, replicas: int, timeout_ms: int) -> int:
    """Redis WAIT for every write this client made so far: how many replicas confirmed them
    (the fewest over the masters, on a cluster). WAIT counts only its own connection's writes
    on the master it is sent to, so on a cluster it goes to every master over the connection
    this (single-threaded) client used there: its pool per node hands out that one connection
    again. Masters in turn; each answers at once when its replicas are up to date. On a single
    Redis, request()'s connection (if the client has one) is asked too."""
    if not isinstance(client, RedisCluster):
        confirmed = client.wait(replicas, timeout_ms)
        if holds_one(client):
            confirmed = min(confirmed, command(client, "WAIT", replicas, timeout_ms))
        return confirmed
    return min((client.get_redis_connection(node).wait(replicas, timeout_ms)
                for node in client.get_primaries()), default=0)


@dataclass
class Rider:
    """A command that need not reach Redis at once: a script call (script set) or a plain
    command (script None, args its whole argument list) on `keys`, all of one slot, and what
    to do with its reply."""

    script: object | None
    keys: list[str]
    args: list
    # Called with the reply; a rider with one is urgent (an ack: it carries the lease and the
    # account), one without may wait for a ride up to RIDE_SECONDS.
    on_reply: Callable[[object], None] | None = None
    since: float = field(default_factory=time.monotonic)


# How long a rider with no reply to hand (a memo UNLINK) may wait for a request to its node.
RIDE_SECONDS = 1.0


@dataclass
class Riders:
    """Writes waiting for the next pipelined request to their node (run_scripts takes them
    along), or for flush(). A batch's dedup reaches every master anyway (the one Redis, or
    every master of a cluster), so a worker's acks, next take and (on a cluster) memo UNLINKs
    ride it instead of costing requests of their own."""

    waiting: list[Rider] = field(default_factory=list)
    unlinks: dict[int, Rider] = field(default_factory=dict)  # the last UNLINK made per slot

    @staticmethod
    def of(client) -> Riders:
        """The riders of one client (made on first use)."""
        riders = _RIDERS.get(client)
        if riders is None:
            riders = _RIDERS[client] = Riders()
        return riders

    def add(self, rider: Rider) -> None:
        self.waiting.append(rider)

    def take_for(self, client, keys: list[str]) -> list[Rider]:
        """Remove and return the riders bound for the nodes that serve `keys` (on a single
        Redis, every one)."""
        if not self.waiting:
            return []
        if not isinstance(client, RedisCluster):
            going, self.waiting = self.waiting, []
            self.unlinks.clear()
            return going
        nodes = {client.get_node_from_key(key).name for key in keys}
        going, staying = [], []
        for rider in self.waiting:
            node = client.get_node_from_key(rider.keys[0]).name
            (going if node in nodes else staying).append(rider)
        self.waiting = staying
        if not staying:
            self.unlinks.clear()
        return going

    def answer(self, client, riding: list[Rider], replies: list) -> list[Exception]:
        """Hand each rider its reply; returns the errors some met (theirs is not called)."""
        failed = []
        for rider, reply in zip(riding, replies, strict=True):
            if isinstance(reply, Exception):
                failed.append(reply)
            elif rider.on_reply is not None:
                rider.on_reply(reply)
        return failed

    def due(self) -> bool:
        """Whether a rider should not wait any longer: an urgent one, or one past RIDE_SECONDS."""
        now = time.monotonic()
        return any(r.on_reply is not None or now - r.since >= RIDE_SECONDS
                   for r in self.waiting)

    def flush(self, client, only_due: bool = False) -> None:
        """Send every waiting rider now (one request per node; with only_due, only if one is
        due) and hand them their replies; raises the first error one met. Their replies may add
        riders: those wait."""
        if not self.waiting or (only_due and not self.due()):
            return
        riding, self.waiting = self.waiting, []
        self.unlinks.clear()
        replies = _pipelined(client, [(r.script, r.keys, r.args) for r in riding])
        failed = self.answer(client, riding, replies)
        if failed:
            raise failed[0]

    def discard(self, riders: list[Rider]) -> None:
        """Forget those riders if they are still waiting (a ride they could only take now)."""
        self.waiting = [r for r in self.waiting if not any(r is gone for gone in riders)]

    def drop_urgent(self) -> None:
        """Forget the riders that wait for a reply (acks of a lease given up); keep the rest."""
        self.waiting = [r for r in self.waiting if r.on_reply is None]


_RIDERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def by_slot(keys: list[str]) -> list[list[str]]:
    """keys grouped by hash slot."""
    slots: dict[int, list[str]] = {}
    for key in keys:
        slots.setdefault(key_slot(key.encode()), []).append(key)
    return list(slots.values())


def unlink_later(riders: Riders, keys: list[str]) -> None:
    """UNLINK keys with the next requests to their nodes: one command per hash slot (keys of
    a slot join its waiting UNLINK, if one is waiting)."""
    waiting = {id(r) for r in riders.waiting}
    for slot_keys in by_slot(keys):
        slot = key_slot(slot_keys[0].encode())
        rider = riders.unlinks.get(slot)
        if rider is not None and id(rider) in waiting:
            rider.keys += slot_keys
            rider.args += slot_keys
        else:
            riders.unlinks[slot] = rider = Rider(None, slot_keys, ["UNLINK", *slot_keys])
            riders.add(rider)
