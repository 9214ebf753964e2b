"""The node registry: every supervisor sharing a Redis announces itself, so `farm status` on any
host shows every live farm host, and a dead host's leftovers can be told apart from a live one's.

- `<p>:node:<node id>`   string: the node's record as JSON (node, pid, workers, started,
  version, http, ingest, seen), written by its supervisor every few seconds with a TTL of
  `[workers] heartbeat_seconds`; deleted when it stops cleanly. A key that expired means the host
  is dead (or cut off from Redis for that long).

A dead node's workers' inflight lists are recovered through their own heartbeats
(farm/queue.py, recover_orphans); its notify sender has none, so its `<p>:notify:inflight:<node>`
list is put back on `<p>:notify` once the node's record is gone (`recover_dead_senders`).
"""

from __future__ import annotations

import json

from farm.notify.outbox import NotifyKeys
from farm.redis_keys import Keys

# KEYS: a notify inflight list and its shard's notify list (one slot). Moves the entries back
# onto the consuming end, oldest first; returns how many.
REQUEUE_LUA = """
local n = 0
while redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT') do n = n + 1 end
return n
"""


def node_key(prefix: str, node: str) -> str:
    return f"{prefix}:node:{node}"


def announce(redis, prefix: str, record: dict, ttl_seconds: float) -> None:
    """Write this node's record with its TTL (the registry's heartbeat)."""
    redis.set(node_key(prefix, record["node"]), json.dumps(record, sort_keys=True),
              px=int(ttl_seconds * 1000))


def withdraw(redis, prefix: str, node: str) -> None:
    """A node that stops cleanly leaves the registry at once."""
    redis.delete(node_key(prefix, node))


def live_nodes(redis, prefix: str) -> list[dict]:
    """Every live node's record, sorted by node id; records that expire while being read are
    left out."""
    keys = sorted(redis.scan_iter(match=node_key(prefix, "*"), count=500))
    if not keys:
        return []
    # GETs in a pipeline, not MGET: on a Redis Cluster the records live in different slots
    # (MGET would be refused with CROSSSLOT); the pipeline makes one request per node.
    pipe = redis.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
    records = []
    for raw in pipe.execute():
        if raw is None:
            continue
        try:
            records.append(json.loads(raw))
        except ValueError:
            continue  # not ours to interpret; never let one bad value hide the others
    return sorted(records, key=lambda r: str(r.get("node", "")))


def recover_dead_senders(redis, keys: Keys) -> int:
    """Put the notify inflight lists of every node whose record expired back on their shard's
    notify list, atomically per list; returns how many entries moved. The record lives in
    another slot than the lists on a cluster, so it is looked at first: a node that comes back
    after that resends what it still holds, which the receiver sees as a repeat, not a loss."""
    script = redis.register_script(REQUEUE_LUA)
    moved = 0
    for shard in keys.all_shards():
        notify = NotifyKeys(keys.shard_prefix(shard))
        marker = notify.inflight("")
        for key in redis.scan_iter(match=marker + "*", count=500):
            key = key.decode() if isinstance(key, bytes) else key
            if redis.exists(node_key(keys.prefix, key[len(marker):])):
                continue
            moved += script(keys=[key, notify.queue])
    return moved
