"""Reliable batch queue on Redis lists: take into an inflight list, ack in commit order, requeue the
inflight list of a dead worker. See farm/redis_keys.py for the keys.
"""

from __future__ import annotations

import fnmatch
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from farm.held_connection import command
from farm.notify import outbox
from farm.notify.outbox import OVERFLOW_REASON, NotifyKeys
from farm.redis_keys import LANES, STAT_NAMES, Keys
from farm.redisconn import Rider, Riders, run_scripts

# KEYS: inflight, hb, dlq, stats (len(STAT_NAMES)), [notify group], memo keys...
# ARGV: lease token, lease ms, batches to trim, one increment per stat, [notify group],
#       dead letters...
# The notify group (farm/notify/outbox.py): KEYS the notify list and its overflow counter;
# ARGV the list's cap, the number of entries n, then the n entries. Entries beyond the cap go
# to the dead-letter list as one letter, so the ack never waits on a slow receiver.
# Checks the lease first: if a supervisor has requeued this worker's inflight list (its
# heartbeat expired), trimming now would drop batches taken since; the worker must start over.
ACK_LUA = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local n_stats = N_STATS
local trim = tonumber(ARGV[3])
if trim > 0 then redis.call('LTRIM', KEYS[1], 0, -trim - 1) end
for i = 1, n_stats do
  local inc = tonumber(ARGV[3 + i])
  if inc ~= 0 then redis.call('INCRBY', KEYS[3 + i], inc) end
end
-- notify group
local nk, na = 4 + n_stats, 4 + n_stats
local cap, n_notes = tonumber(ARGV[na]), tonumber(ARGV[na + 1])
if n_notes > 0 then
  local fit = math.min(n_notes, math.max(0, cap - redis.call('LLEN', KEYS[nk])))
  for from = 1, fit, 1000 do  -- unpack() has a stack limit
    redis.call('LPUSH', KEYS[nk], unpack(ARGV, na + 1 + from, na + 1 + math.min(from + 999, fit)))
  end
  if fit < n_notes then
    local over, t = {}, redis.call('TIME')
    for i = fit + 1, n_notes do over[#over + 1] = ARGV[na + 1 + i] end
    redis.call('LPUSH', KEYS[3], cmsgpack.pack({reason = 'OVERFLOW_REASON', stage = 'notify',
      at = tonumber(t[1]) + tonumber(t[2]) / 1e6, payload = over}))
    redis.call('INCRBY', KEYS[nk + 1], n_notes - fit)
  end
end
-- end of the notify group
for i = nk + 2, #KEYS do redis.call('DEL', KEYS[i]) end
for i = na + 2 + n_notes, #ARGV do redis.call('LPUSH', KEYS[3], ARGV[i]) end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
""".replace("N_STATS", str(len(STAT_NAMES))).replace("OVERFLOW_REASON", OVERFLOW_REASON)

# KEYS: inflight, hb, target queue, redelivered counter, the shard's worker set; ARGV: '1' to
# skip the heartbeat check, the worker id, '1' to drop it from the worker set (its host is dead).
# Moves newest-first onto the consuming end, so the oldest batch is taken again first.
RECOVER_LUA = """
if ARGV[1] ~= '1' and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local n = 0
while redis.call('LMOVE', KEYS[1], KEYS[3], 'LEFT', 'RIGHT') do n = n + 1 end
if n > 0 then redis.call('INCRBY', KEYS[4], n) end
if ARGV[3] == '1' then redis.call('SREM', KEYS[5], ARGV[2]) end
return n
"""


@dataclass
class ShardAck:
    """What one shard's ack call carries: how many of its oldest inflight batches to trim, and
    those batches' counters, dead letters, notifications and (single Redis only) memo keys."""

    trim: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    dead_letters: list[bytes] = field(default_factory=list)
    memo_keys: list[str] = field(default_factory=list)
    notifications: list[bytes] = field(default_factory=list)


class WorkQueue:
    """One worker's side of the queue: an inflight list and a lease per shard, in the shard's
    hash slot, so each take, ack and recovery touches one slot."""

    def __init__(self, redis, keys: Keys, worker_id: str, lease_seconds: int,
                 notify_cap: int = 0):
        self.redis = redis
        self.keys = keys
        self.worker_id = worker_id
        self.shards = list(keys.all_shards())
        self.inflight = [keys.inflight(worker_id, s) for s in self.shards]
        self.heartbeat = [keys.heartbeat(worker_id, s) for s in self.shards]
        self.lease_ms = lease_seconds * 1000
        self.token = ""
        self._queues = [[keys.queue(lane, s) for lane in LANES] for s in self.shards]
        self._ack = redis.register_script(ACK_LUA)
        self._recover = redis.register_script(RECOVER_LUA)
        self._stat_keys = [[keys.stat(name, s) for name in STAT_NAMES] for s in self.shards]
        self._notify_keys = []
        for s in self.shards:
            notify_keys = NotifyKeys(keys.shard_prefix(s))
            self._notify_keys.append([notify_keys.queue, notify_keys.overflowed])
        self.notify_cap = notify_cap
        self._next = 0  # the shard the next take starts at
        self._idle = False  # whether the last take found every shard empty

    def claim(self) -> None:
        """Take a fresh lease; anything left in our inflight lists from before goes back first."""
        self.requeue_own()
        self.token = secrets.token_hex(8)
        pipe = self.redis.pipeline(transaction=False)
        for shard, heartbeat in zip(self.shards, self.heartbeat, strict=True):
            pipe.set(heartbeat, self.token, px=self.lease_ms)
            pipe.sadd(self.keys.workers(shard), self.worker_id)  # before anything is taken
        pipe.execute()

    def requeue_own(self) -> int:
        return sum(run_scripts(self.redis, [
            (self._recover, _recover_keys(self.keys, self.worker_id, s),
             ["1", self.worker_id, "0"])
            for s in self.shards]))

    def take(self, block_seconds: float) -> list[tuple[int, bytes]]:
        """Batches as (shard, batch), critical first within a shard: up to one per lane of the
        next shard in turn (one round trip); if it is empty, up to one per lane of every other
        shard (one pipelined request per node); if all are empty, block on one shard's normal
        lane for up to block_seconds. The shards take turns, so none waits behind another.
        After a take that found nothing, the next one sweeps every shard at once (an idle
        worker's probe: one request per node, not one more for the first shard)."""
        n = len(self.shards)
        first = self._next
        self._next = (first + 1) % n
        if self._idle:  # the last take found nothing: sweep every shard at once
            got = self._take_from([(first + k) % n for k in range(n)])
        else:
            got = self._take_from([first])
            if not got and n > 1:
                got = self._take_from([(first + k) % n for k in range(1, n)])
        self._idle = not got
        if got or block_seconds <= 0 or Riders.of(self.redis).waiting:
            return got  # riders the sweep did not take (for other nodes) must not wait on us
        raw = command(self.redis, "BLMOVE", self._queues[first][-1], self.inflight[first],
                      "RIGHT", "LEFT", block_seconds)
        return [(first, raw)] if raw is not None else []

    @property
    def idle(self) -> bool:
        """Whether the last take (or take riders) found every lane it looked at empty."""
        return self._idle

    def take_riders(self, got: Callable[[int, bytes], None]) -> list[Rider]:
        """The first step of take() as riders (farm/redisconn.py) for a caller that sends it
        along with other requests to the shard's node: the LMOVEs of the shard whose turn it
        is, critical first; got(shard, batch) is called for each batch they take, in the
        order the batches entered the inflight list. The turn passes once they ran, and they
        count as a take for `idle`."""
        shard = self._next

        def lane(index: int):
            def answer(raw) -> None:
                if index == 0:  # the lanes ride together: one turn
                    self._next = (shard + 1) % len(self.shards)
                    self._idle = True
                if raw is not None:
                    self._idle = False
                    got(shard, raw)
            return answer

        return [Rider(None, [queue, self.inflight[shard]],
                      ["LMOVE", queue, self.inflight[shard], "RIGHT", "LEFT"], lane(i))
                for i, queue in enumerate(self._queues[shard])]

    def _take_from(self, shards: list[int]) -> list[tuple[int, bytes]]:
        """The LMOVEs of those shards' lanes, critical first, in one pipelined request per node,
        with the riders waiting for those nodes (an ack that is due goes along)."""
        replies = run_scripts(self.redis, [
            (None, [queue, self.inflight[shard]],
             ["LMOVE", queue, self.inflight[shard], "RIGHT", "LEFT"])
            for shard in shards for queue in self._queues[shard]])
        lanes = len(LANES)
        return [(shards[i // lanes], raw) for i, raw in enumerate(replies) if raw is not None]

    def ack(self, acks: dict[int, ShardAck], refresh_all: bool = False) -> list[int]:
        """Per shard, atomically: drop its `trim` oldest inflight batches (all committed),
        count them, push their dead letters and notifications (up to notify_cap waiting),
        refresh the shard's lease. With refresh_all, every shard's lease is refreshed. Returns
        the shards whose lease was lost (their batches were requeued by a supervisor)."""
        calls = self.ack_calls(acks, refresh_all)
        if not calls:
            return []
        replies = run_scripts(self.redis, [call for _, call in calls])
        return [s for (s, _), ok in zip(calls, replies, strict=True) if ok != 1]

    def ack_calls(self, acks: dict[int, ShardAck],
                  refresh_all: bool = False) -> list[tuple[int, tuple]]:
        """(shard, (script, keys, args)) of each shard's ack call, as ack() runs them; a reply
        other than 1 means the shard's lease was lost."""
        if refresh_all:
            acks = {s: acks.get(s) or ShardAck() for s in self.shards}
        calls = []
        for shard, one in acks.items():
            keys = [self.inflight[shard], self.heartbeat[shard], self.keys.dead_letters(shard),
                    *self._stat_keys[shard], *self._notify_keys[shard], *one.memo_keys]
            args = [self.token, self.lease_ms, one.trim,
                    *(one.counts.get(name, 0) for name in STAT_NAMES),
                    self.notify_cap, len(one.notifications), *one.notifications,
                    *one.dead_letters]
            calls.append((shard, (self._ack, keys, args)))
        return calls

    def release(self) -> None:
        """On a clean exit: the inflight lists are empty; drop the lease."""
        pipe = self.redis.pipeline(transaction=False)
        for shard, heartbeat in zip(self.shards, self.heartbeat, strict=True):
            pipe.delete(heartbeat)
            pipe.srem(self.keys.workers(shard), self.worker_id)
        pipe.execute()


def _recover_keys(keys: Keys, worker_id: str, shard: int) -> list[str]:
    return [keys.inflight(worker_id, shard), keys.heartbeat(worker_id, shard),
            keys.queue("critical", shard), keys.stat("batches_redelivered", shard),
            keys.workers(shard)]


def _recover_call(script, keys: Keys, worker_id: str, shard: int, force: bool,
                  forget: bool) -> tuple:
    return (script, _recover_keys(keys, worker_id, shard),
            ["1" if force else "0", worker_id, "1" if forget else "0"])


def recover(redis, keys: Keys, worker_id: str, force: bool = False,
            shards: list[int] | None = None) -> int:
    """Requeue a worker's inflight lists (every shard's, or those named) if their heartbeat
    has expired (or unconditionally with force, for a worker we know is dead), each to its own
    shard's critical lane. Returns how many batches moved; atomic per shard."""
    script = redis.register_script(RECOVER_LUA)
    shards = list(keys.all_shards()) if shards is None else shards
    return sum(run_scripts(redis, [_recover_call(script, keys, worker_id, s, force, False)
                                   for s in shards]))


def inflight_lists(redis, keys: Keys, worker_glob: str = "*") -> list[tuple[str, int]]:
    """(worker id, shard) of every worker that may hold an inflight list (on every node of a
    cluster), from the shards' worker sets; a listed worker's list may be empty. Lists that
    no set names are found by the keyspace sweep (farm/sweep.py), which adds them."""
    pipe = redis.pipeline(transaction=False)
    for shard in keys.all_shards():
        pipe.smembers(keys.workers(shard))
    found = {(member.decode() if isinstance(member, bytes) else member, shard)
             for shard, members in zip(keys.all_shards(), pipe.execute(), strict=True)
             for member in members}
    return sorted((w, s) for w, s in found if fnmatch.fnmatchcase(w, worker_glob))


def recover_orphans(redis, keys: Keys, live_nodes: set[str] | None = None) -> int:
    """Requeue every inflight list whose worker's heartbeat has expired, on any host and
    shard, in one request (one per node of a cluster). A worker of a node not in live_nodes
    (the node registry's live ids, when given) leaves its shard's worker set once its
    heartbeat is gone: its host is dead, and a host that comes back re-adds its workers
    before they take anything."""
    script = redis.register_script(RECOVER_LUA)
    calls = [_recover_call(script, keys, worker_id, shard, False,
                           live_nodes is not None and node_of(worker_id) not in live_nodes)
             for worker_id, shard in inflight_lists(redis, keys)]
    return sum(run_scripts(redis, calls)) if calls else 0


def node_of(worker_id: str) -> str:
    """The node id part of a worker id (`<node id>.<slot>`)."""
    return worker_id.rpartition(".")[0]


def depths(redis, keys: Keys) -> dict[str, int]:
    """Queue depth per lane (over all shards) and the total inflight across all workers."""
    pipe = redis.pipeline(transaction=False)
    for lane in LANES:
        for shard in keys.all_shards():
            pipe.llen(keys.queue(lane, shard))
    lengths = pipe.execute()
    n = keys.shards
    result = {lane: sum(lengths[i * n:(i + 1) * n]) for i, lane in enumerate(LANES)}
    found = inflight_lists(redis, keys)
    if found:
        pipe = redis.pipeline(transaction=False)
        for worker_id, shard in found:
            pipe.llen(keys.inflight(worker_id, shard))
        result["inflight"] = sum(pipe.execute())
    else:
        result["inflight"] = 0
    return result


def read_stats(redis, keys: Keys) -> dict[str, int]:
    """The account's counters, summed over the shards."""
    if not keys.sharded:
        values = redis.mget([keys.stat(name) for name in STAT_NAMES])
        return {name: int(v or 0) for name, v in zip(STAT_NAMES, values, strict=False)}
    pipe = redis.pipeline(transaction=False)
    for shard in keys.all_shards():
        for name in STAT_NAMES:
            pipe.get(keys.stat(name, shard))
    values = pipe.execute()
    totals = dict.fromkeys(STAT_NAMES, 0)
    for i, value in enumerate(values):
        totals[STAT_NAMES[i % len(STAT_NAMES)]] += int(value or 0)
    return totals


def dead_letter_count(redis, keys: Keys) -> int:
    """Letters in every shard's dead-letter list."""
    pipe = redis.pipeline(transaction=False)
    for shard in keys.all_shards():
        pipe.llen(keys.dead_letters(shard))
    return sum(pipe.execute())


def notify_depth(redis, keys: Keys) -> tuple[int, int]:
    """(notifications waiting, overflowed so far), over every shard's notify list."""
    waiting = overflowed = 0
    for shard in keys.all_shards():
        w, o = outbox.depth(redis, NotifyKeys(keys.shard_prefix(shard)))
        waiting, overflowed = waiting + w, overflowed + o
    return waiting, overflowed
