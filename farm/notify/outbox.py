"""The Redis side of notifications: the bounded list workers push to, and the sender's own
inflight list, so a sender that dies mid-request resends that request when it starts again.

Keys, one set per queue shard (`<S>` is the shard's prefix, farm/redis_keys.py: `[redis]
prefix` itself on a single Redis with one shard):
- `<S>:notify`                   list of entries (farm/notify/entries.py), newest on the left.
  Workers LPUSH in their ack script (farm/queue.py), up to `[notify] max_queue` entries.
- `<S>:notify:inflight:<node>`   list: the entries of the request the node's sender is making,
  moved there from `<S>:notify` atomically; deleted once delivered or dead-lettered.
- `<S>:notify:overflowed`        integer: entries the ack scripts sent to the dead-letter list
  because `<S>:notify` was full.
"""

from __future__ import annotations

# KEYS: the notify list, the inflight list; ARGV: most entries to move. Returns them, oldest
# first. Atomic, so an entry is always in exactly one of the two lists.
TAKE_LUA = """
local taken = {}
for i = 1, tonumber(ARGV[1]) do
  local entry = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
  if not entry then break end
  taken[i] = entry
end
return taken
"""

OVERFLOW_REASON = "notify: queue full"


class NotifyKeys:
    def __init__(self, prefix: str):
        self.queue = f"{prefix}:notify"
        self.overflowed = f"{prefix}:notify:overflowed"
        self.dlq = f"{prefix}:dlq"

    def inflight(self, node: str) -> str:
        return f"{self.queue}:inflight:{node}"


class Outbox:
    """The sender's view (redis.asyncio client): take into its inflight list, finish a request."""

    def __init__(self, redis, keys: NotifyKeys, node: str):
        self.redis = redis
        self.keys = keys
        self.inflight = keys.inflight(node)
        self._take = redis.register_script(TAKE_LUA)

    async def leftovers(self) -> list[bytes]:
        """What a previous run of this node's sender was sending when it stopped, oldest
        first: it is sent again before anything new."""
        return list(reversed(await self.redis.lrange(self.inflight, 0, -1)))

    async def take(self, most: int) -> list[bytes]:
        return list(await self._take(keys=[self.keys.queue, self.inflight], args=[most]))

    async def wait_for_one(self, seconds: float) -> list[bytes]:
        entry = await self.redis.blmove(self.keys.queue, self.inflight, seconds, "RIGHT", "LEFT")
        return [] if entry is None else [entry]

    async def delivered(self) -> None:
        await self.redis.delete(self.inflight)

    async def give_up(self, letter: bytes) -> None:
        """Push the dead letter of the request in flight and drop it from the inflight list,
        atomically."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(self.keys.dlq, letter)
            pipe.delete(self.inflight)
            await pipe.execute()


def depth(redis, keys: NotifyKeys) -> tuple[int, int]:
    """(entries waiting, entries overflowed so far), with a synchronous client."""
    pipe = redis.pipeline(transaction=False)
    pipe.llen(keys.queue)
    pipe.get(keys.overflowed)
    waiting, overflowed = pipe.execute()
    return int(waiting), int(overflowed or 0)
