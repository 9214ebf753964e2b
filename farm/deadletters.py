"""The dead-letter list (`<prefix>:dlq`): what a letter is, and reading and replaying them."""

from __future__ import annotations

import time

import msgpack

from farm.notify.outbox import NotifyKeys
from farm.redis_keys import Keys, keys_for
from farm.redis_server import redis_url_of
from farm.wire import PROVIDERS, encode_batch

LETTER_KEYS = ("reason", "stage", "at", "batch", "tenant", "provider", "payload")


def dead_letter(reason: str, stage: str, payload: object, batch_id: str | None = None,
                tenant: str | None = None, provider: str | None = None) -> bytes:
    """A dead-letter record as stored in `<prefix>:dlq`."""
    return msgpack.packb({"reason": reason, "stage": stage, "at": time.time(), "batch": batch_id,
                          "tenant": tenant, "provider": provider, "payload": payload},
                         default=repr)


def decode_letter(raw: bytes) -> dict:
    """A letter with every key of LETTER_KEYS (None where its writer had no value for it)."""
    try:
        letter = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception as exc:
        return {"reason": f"unreadable dead letter: {exc}", "stage": "?", "at": None,
                "batch": None, "payload": raw}
    if not isinstance(letter, dict):
        return {"reason": "unreadable dead letter", "stage": "?", "at": None, "batch": None,
                "payload": letter}
    for key in LETTER_KEYS:
        letter.setdefault(key, None)
    return letter


def list_letters(redis, cfg, limit: int, start: int = 0) -> list[dict]:
    """Newest first, from the `start`-th; a payload of bytes is summarised by its size."""
    keys = keys_for(cfg, redis_url_of(cfg))
    out = []
    for shard in keys.all_shards():  # each shard's list is newest first: merge them by time
        first = start if keys.shards == 1 else 0
        for raw in redis.lrange(keys.dead_letters(shard), first, start + limit - 1):
            letter = decode_letter(raw)
            payload = letter.get("payload")
            if isinstance(payload, (bytes, bytearray)):
                letter["payload"] = f"<{len(payload)} bytes>"
            out.append(letter)
    if keys.shards == 1:
        return out
    out.sort(key=lambda letter: _time_of(letter), reverse=True)
    return out[start:start + limit]


def _time_of(letter: dict) -> float:
    at = letter.get("at")
    return float(at) if isinstance(at, (int, float)) else 0.0


def _requeue(letter: dict, keys: Keys, shard: int) -> tuple[str, list[bytes]] | None:
    """Where to push what, oldest first, for a dead letter of a shard's list (on a cluster,
    into the same shard: one slot per move); None if it cannot be replayed. Notifications go
    back to the shard's notify list as they were queued."""
    payload = letter.get("payload")
    if letter.get("stage") == "notify" and isinstance(payload, list):
        return (NotifyKeys(keys.shard_prefix(shard)).queue,
                [str(entry).encode() for entry in payload])
    batch = _requeue_payload(letter)
    return None if batch is None else (keys.queue("normal", shard), [batch])


def _requeue_payload(letter: dict) -> bytes | None:
    """The batch to push back for a dead letter, or None if it cannot be replayed."""
    payload = letter.get("payload")
    provider = letter.get("provider")
    tenant = letter.get("tenant") or "default"
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)  # a whole batch, as it came
    if letter.get("stage") == "store" and isinstance(payload, dict):
        return encode_batch([payload], "keep", tenant)  # a canonical alert reads as Keep's
    if provider in PROVIDERS and payload is not None:
        return encode_batch([payload], provider, tenant)
    return None


def replay(redis, cfg, limit: int | None) -> tuple[int, int]:
    """Move dead letters, oldest first, back to the normal queue (notifications: back to the
    notify list, for the sender), shard by shard. Returns (replayed, skipped); skipped letters
    stay in the list."""
    keys = keys_for(cfg, redis_url_of(cfg))
    replayed = skipped = 0
    for shard in keys.all_shards():
        if limit is not None and replayed + skipped >= limit:
            break
        left = None if limit is None else limit - replayed - skipped
        done, passed = _replay_shard(redis, keys, shard, left)
        replayed, skipped = replayed + done, skipped + passed
    return replayed, skipped


def _replay_shard(redis, keys: Keys, shard: int, limit: int | None) -> tuple[int, int]:
    dlq = keys.dead_letters(shard)
    total = redis.llen(dlq)
    todo = total if limit is None else min(limit, total)
    replayed = skipped = 0
    for _ in range(todo):
        raw = redis.lindex(dlq, -1)
        if raw is None:
            break
        target = _requeue(decode_letter(raw), keys, shard)

        def move(pipe, raw=raw, target=target):
            if pipe.lindex(dlq, -1) != raw:
                return False
            pipe.multi()
            pipe.rpop(dlq)
            if target is None:
                pipe.lpush(dlq, raw)
            else:
                pipe.lpush(target[0], *target[1])
            return True

        if redis.transaction(move, dlq, value_from_callable=True):
            if target is None:
                skipped += 1
            else:
                replayed += 1
    return replayed, skipped
