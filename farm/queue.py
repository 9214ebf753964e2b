"""Reliable batch queue on Redis lists: take into an inflight list, ack in commit order, requeue the
inflight list of a dead worker. See farm/redis_keys.py for the keys.
"""

from __future__ import annotations

import secrets

from farm.notify.outbox import OVERFLOW_REASON, NotifyKeys
from farm.redis_keys import LANES, STAT_NAMES, Keys

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

# KEYS: inflight, hb, target queue, redelivered counter; ARGV: '1' to skip the heartbeat check.
# Moves newest-first onto the consuming end, so the oldest batch is taken again first.
RECOVER_LUA = """
if ARGV[1] ~= '1' and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local n = 0
while redis.call('LMOVE', KEYS[1], KEYS[3], 'LEFT', 'RIGHT') do n = n + 1 end
if n > 0 then redis.call('INCRBY', KEYS[4], n) end
return n
"""


class WorkQueue:
    """One worker's side of the queue."""

    def __init__(self, redis, keys: Keys, worker_id: str, lease_seconds: int,
                 notify_cap: int = 0):
        self.redis = redis
        self.keys = keys
        self.worker_id = worker_id
        self.inflight = keys.inflight(worker_id)
        self.heartbeat = keys.heartbeat(worker_id)
        self.lease_ms = lease_seconds * 1000
        self.token = ""
        self._queues = [keys.queue(lane) for lane in LANES]
        self._ack = redis.register_script(ACK_LUA)
        self._recover = redis.register_script(RECOVER_LUA)
        self._stat_keys = [keys.stat(name) for name in STAT_NAMES]
        notify_keys = NotifyKeys(keys.prefix)
        self._notify_keys = [notify_keys.queue, notify_keys.overflowed]
        self.notify_cap = notify_cap

    def claim(self) -> None:
        """Take a fresh lease; anything left in our inflight list from before goes back first."""
        self.requeue_own()
        self.token = secrets.token_hex(8)
        self.redis.set(self.heartbeat, self.token, px=self.lease_ms)

    def requeue_own(self) -> int:
        return self._recover(keys=[self.inflight, self.heartbeat, self.keys.queue("critical"),
                                   self.keys.stat("batches_redelivered")], args=["1"])

    def take(self, block_seconds: float) -> list[bytes]:
        """Up to one batch per lane (critical first) in one round trip; if both are empty,
        block on the normal lane for up to block_seconds."""
        pipe = self.redis.pipeline(transaction=False)
        for queue in self._queues:
            pipe.lmove(queue, self.inflight, "RIGHT", "LEFT")
        got = [raw for raw in pipe.execute() if raw is not None]
        if got or block_seconds <= 0:
            return got
        raw = self.redis.blmove(self._queues[-1], self.inflight, block_seconds, "RIGHT", "LEFT")
        return [raw] if raw is not None else []

    def ack(self, batches: int, counts: dict[str, int], dead_letters: list[bytes],
            memo_keys: list[str], notifications: list[bytes] = ()) -> bool:
        """Drop the `batches` oldest inflight batches (all committed), count them, push their
        dead letters and notifications (up to notify_cap waiting), refresh the lease; all
        atomically. False: the lease was lost."""
        keys = [self.inflight, self.heartbeat, self.keys.dlq, *self._stat_keys,
                *self._notify_keys, *memo_keys]
        args = [self.token, self.lease_ms, batches,
                *(counts.get(name, 0) for name in STAT_NAMES),
                self.notify_cap, len(notifications), *notifications,
                *dead_letters]
        return self._ack(keys=keys, args=args) == 1

    def release(self) -> None:
        """On a clean exit: the inflight list is empty; drop the lease."""
        self.redis.delete(self.heartbeat)


def recover(redis, keys: Keys, worker_id: str, force: bool = False) -> int:
    """Requeue a worker's inflight list if its heartbeat has expired (or unconditionally with
    force, for a worker we know is dead). Returns how many batches moved; atomic."""
    script = redis.register_script(RECOVER_LUA)
    return script(keys=[keys.inflight(worker_id), keys.heartbeat(worker_id),
                        keys.queue("critical"), keys.stat("batches_redelivered")],
                  args=["1" if force else "0"])


def recover_orphans(redis, keys: Keys) -> int:
    """Requeue every inflight list whose worker's heartbeat has expired, on any host."""
    moved = 0
    for key in redis.scan_iter(match=keys.inflight_pattern(), count=500):
        key = key.decode() if isinstance(key, bytes) else key
        moved += recover(redis, keys, keys.worker_of_inflight(key))
    return moved


def depths(redis, keys: Keys) -> dict[str, int]:
    """Queue depth per lane and the total inflight across all workers."""
    pipe = redis.pipeline(transaction=False)
    for lane in LANES:
        pipe.llen(keys.queue(lane))
    result = dict(zip(LANES, pipe.execute(), strict=False))
    inflight_keys = list(redis.scan_iter(match=keys.inflight_pattern(), count=500))
    if inflight_keys:
        pipe = redis.pipeline(transaction=False)
        for key in inflight_keys:
            pipe.llen(key)
        result["inflight"] = sum(pipe.execute())
    else:
        result["inflight"] = 0
    return result


def read_stats(redis, keys: Keys) -> dict[str, int]:
    values = redis.mget([keys.stat(name) for name in STAT_NAMES])
    return {name: int(v or 0) for name, v in zip(STAT_NAMES, values, strict=False)}
