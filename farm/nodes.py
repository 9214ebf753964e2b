"""The node registry: every supervisor sharing a Redis announces itself, so `farm status` on any
host shows every live farm host, and a dead host's leftovers can be told apart from a live one's.

- `<p>:node:<node id>`   string: the node's record as JSON (node, pid, workers, started,
  version, http, ingest, seen), written by its supervisor every few seconds with a TTL of
  `[workers] heartbeat_seconds`; deleted when it stops cleanly. A key that expired means the host
  is dead (or cut off from Redis for that long).
- `<p>:nodes`            sorted set: node id -> when its record expires (unix ms), written with
  the record. Readers find the nodes here, never by scanning the keyspace (which holds every
  dedup key: a scan of it costs Redis seconds at production sizes, on every /status).

A dead node's workers' inflight lists are recovered through their own heartbeats
(farm/queue.py, recover_orphans); its notify sender has none, so its `<p>:notify:inflight:<node>`
list is put back on `<p>:notify` once the node's record is gone (`recover_dead_senders`).
"""

from __future__ import annotations

import json
import time

from farm.notify.outbox import NotifyKeys
from farm.redis_keys import Keys

# KEYS: a notify inflight list and its shard's notify list (one slot). Moves the entries back
# onto the consuming end, oldest first; returns how many.
REQUEUE_LUA = """
local n = 0
while redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT') do n = n + 1 end
return n
"""

# KEYS: the node index; ARGV: a time (unix ms), then node ids. Drops those ids still expired at
# that time: a node that announced itself again since it was read as dead stays.
FORGET_DEAD_LUA = """
local n = 0
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) <= tonumber(ARGV[1]) then
    n = n + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return n
"""


def node_key(prefix: str, node: str) -> str:
    return f"{prefix}:node:{node}"


def index_key(prefix: str) -> str:
    return f"{prefix}:nodes"


def announce(redis, prefix: str, record: dict, ttl_seconds: float) -> None:
    """Write this node's record with its TTL (the registry's heartbeat), and its expiry in the
    index."""
    ttl_ms = int(ttl_seconds * 1000)
    pipe = redis.pipeline(transaction=False)
    pipe.set(node_key(prefix, record["node"]), json.dumps(record, sort_keys=True), px=ttl_ms)
    pipe.zadd(index_key(prefix), {record["node"]: int(time.time() * 1000) + ttl_ms})
    pipe.execute()


def withdraw(redis, prefix: str, node: str) -> None:
    """A node that stops cleanly leaves the registry at once."""
    pipe = redis.pipeline(transaction=False)
    pipe.delete(node_key(prefix, node))
    pipe.zrem(index_key(prefix), node)
    pipe.execute()


def live_nodes(redis, prefix: str) -> list[dict]:
    """Every live node's record, sorted by node id; records that expire while being read are
    left out."""
    names = sorted(live_names(redis, prefix))
    if not names:
        return []
    # GETs in a pipeline, not MGET: on a Redis Cluster the records live in different slots
    # (MGET would be refused with CROSSSLOT); the pipeline makes one request per node.
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.get(node_key(prefix, name))
    records = []
    for raw in pipe.execute():
        if raw is None:
            continue
        try:
            records.append(json.loads(raw))
        except ValueError:
            continue  # not ours to interpret; never let one bad value hide the others
    return sorted(records, key=lambda r: str(r.get("node", "")))


def live_names(redis, prefix: str) -> set[str]:
    """The ids of the nodes whose record has not expired (from the index alone)."""
    return set(_decoded(redis.zrangebyscore(index_key(prefix), int(time.time() * 1000), "+inf")))


def recover_dead_senders(redis, keys: Keys) -> int:
    """Put the notify inflight lists of every node whose record expired back on their shard's
    notify list, atomically per list; returns how many entries moved. The record lives in
    another slot than the lists on a cluster, so it is looked at first: a node that comes back
    after that resends what it still holds, which the receiver sees as a repeat, not a loss.

    The dead nodes come from the index, and leave it once their lists are back; the keyspace
    sweep (farm/sweep.py) adds the nodes of lists it finds outside the index."""
    script = redis.register_script(REQUEUE_LUA)
    index = index_key(keys.prefix)
    now_ms = int(time.time() * 1000)
    dead = set(_decoded(redis.zrangebyscore(index, "-inf", now_ms)))
    moved, done = 0, set(dead)
    for node, shard in ((node, shard) for node in dead for shard in keys.all_shards()):
        if redis.exists(node_key(keys.prefix, node)):
            done.discard(node)  # it came back: its sender holds these
            continue
        notify = NotifyKeys(keys.shard_prefix(shard))
        moved += script(keys=[notify.inflight(node), notify.queue])
    if done:
        redis.register_script(FORGET_DEAD_LUA)(keys=[index], args=[now_ms, *sorted(done)])
    return moved


def _decoded(names) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else n for n in names]
