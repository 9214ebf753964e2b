"""Deduplication as Keep decides it (docs/keep-compatibility.md#full-or-partial), one atomic Redis
call per batch chunk.

The content digest of an alert is xxh3-128 over its canonical JSON (sorted keys) without farm's
bookkeeping fields and without the rule's ignore_fields (farm/rules/dedup_rules.py says which
rule applies). Keep hashes with SHA-256 over `json.dumps(sort_keys=True)` of its whole AlertDto;
the digest is only ever compared with digests farm computed, so any stable digest of the same
content gives the same decisions, and this one costs a fraction. Against the digest stored for
the alert's fingerprint it is:
  n  new       no digest stored (or the stored one was set by this very event)
  p  partial   a different digest is stored: a new version of a known alert
  f  full      the same digest is stored: a full duplicate, kept out of history
Alerts of one batch are decided in order, so two identical alerts in one batch are a new one and
a full duplicate (Keep decides both as new; a quirk farm fixes).

A batch is decided in chunks of `[workers] batch_max` alerts, one call each. The decisions are
memoised under `decided:<batch id>`: one letter per alert of the batch, by its position in the
batch, written chunk by chunk, kept until the batch is acked. A redelivered batch replays them
by position, so it gets the same decisions however it is cut into chunks this time (batch_max
may have changed in between), and decides afresh only alerts past the memo's end (a delivery
that stopped part-way).
"""

from __future__ import annotations

import orjson
import xxhash

from farm.alert import BOOKKEEPING_FIELDS

# KEYS[1] the batch's memo, KEYS[2..] dedup keys; ARGV[1] ttl, ARGV[2] memo ttl, ARGV[3] the
# chunk's start (position of its first alert in the batch, from 0), then (digest, eventId) per
# dedup key. A stored value is the 16-byte digest followed by the eventId that set it.
DECIDE_LUA = """
local memo = redis.call('GET', KEYS[1]) or ''
local start = tonumber(ARGV[3])
local ttl = ARGV[1]
local out = {}
for i = 2, #KEYS do
  local position = start + i - 1
  local decision = string.sub(memo, position, position)
  if decision ~= 'n' and decision ~= 'p' and decision ~= 'f' then
    local digest = ARGV[2 * i]
    local event_id = ARGV[2 * i + 1]
    local stored = redis.call('GET', KEYS[i])
    if not stored or string.sub(stored, 17) == event_id then
      decision = 'n'
      redis.call('SET', KEYS[i], digest .. event_id, 'EX', ttl)
    elseif string.sub(stored, 1, 16) == digest then
      decision = 'f'
      redis.call('EXPIRE', KEYS[i], ttl)
    else
      decision = 'p'
      redis.call('SET', KEYS[i], digest .. event_id, 'EX', ttl)
    end
  end
  out[i - 1] = decision
end
local decisions = table.concat(out)
if start + #decisions > #memo then
  redis.call('SETRANGE', KEYS[1], start, decisions)
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return decisions
"""

# KEYS[1] a dedup key, ARGV[1] an eventId: delete the key only if that event set it.
FORGET_LUA = """
local stored = redis.call('GET', KEYS[1])
if stored and string.sub(stored, 17) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

NEW, PARTIAL, FULL = "n", "p", "f"
# A memo outlives its batch only if the worker dies and nobody requeues the batch for a day.
MEMO_TTL_SECONDS = 86_400


def _json_default(value: object) -> object:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _drop_path(doc: dict, path: list[str]) -> dict:
    """A copy of doc without the nested key at path; missing paths are ignored (a Keep quirk
    fails the event instead)."""
    head, rest = path[0], path[1:]
    if head not in doc:
        return doc
    if not rest:
        return {k: v for k, v in doc.items() if k != head}
    inner = doc[head]
    if not isinstance(inner, dict):
        return doc
    copy = dict(doc)
    copy[head] = _drop_path(inner, rest)
    return copy


class ContentHasher:
    """Digest of an alert's content, minus bookkeeping fields and the rule's ignore_fields."""

    def __init__(self, ignore_fields: list[str]):
        self.top_level = frozenset(f for f in ignore_fields if "." not in f) | BOOKKEEPING_FIELDS
        self.ignored = tuple(self.top_level - BOOKKEEPING_FIELDS)  # farm's own are strings
        self.nested = [f.split(".") for f in ignore_fields if "." in f]

    def content(self, alert: dict) -> dict:
        doc = alert.copy()  # a C-level copy and a few pops beat a filtering comprehension
        for key in self.top_level:
            doc.pop(key, None)
        for path in self.nested:
            doc = _drop_path(doc, path)
        return doc

    def digest(self, alert: dict) -> bytes:
        """The digest. Raises TypeError (orjson.JSONEncodeError) where the stores' encoders would:
        a map key that is not a string, nesting deeper than orjson's 254 levels. The pipeline
        computes it before any decision, so such an alert is dead-lettered before Redis stores
        anything for it."""
        data = orjson.dumps(self.content(alert), default=_json_default,
                            option=orjson.OPT_SORT_KEYS)
        if self._hides_a_container(alert):
            # The ignored part is not in the digest but is in the document: check it too.
            orjson.dumps(alert, default=_json_default)
        return xxhash.xxh3_128_digest(data)

    def _hides_a_container(self, alert: dict) -> bool:
        """Whether an ignored field holds a map or a list (a scalar always encodes)."""
        for key in self.ignored:
            if isinstance(alert.get(key), (dict, list)):
                return True
        for path in self.nested:
            value: object = alert
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            if isinstance(value, (dict, list)):
                return True
        return False

    def hexdigest(self, alert: dict) -> str:
        return self.digest(alert).hex()


class Deduplicator:
    """Decides new / partial / full for the alerts of one batch in one Redis round trip."""

    def __init__(self, redis, keys, ttl_seconds: int):
        self.keys = keys
        self.ttl = ttl_seconds
        self._decide = redis.register_script(DECIDE_LUA)
        self._forget = redis.register_script(FORGET_LUA)

    def decide(self, batch_id: str, start: int, tenant: str, alerts: list[dict],
               digests: list[bytes]) -> str:
        """One decision letter per alert of the chunk that starts at position `start` of the
        batch, in order; replayed from the batch's memo where it has them. Raises redis errors
        as they come."""
        if not alerts:
            return ""
        dedup_key = self.keys.dedup
        keys = [self.keys.decided(batch_id)]
        args: list = [self.ttl, MEMO_TTL_SECONDS, start]
        for alert, digest in zip(alerts, digests, strict=False):
            keys.append(dedup_key(tenant, alert["fingerprint"]))
            args.append(digest)
            args.append(alert["eventId"])
        decisions = self._decide(keys=keys, args=args)
        return decisions.decode() if isinstance(decisions, bytes) else decisions

    def forget(self, tenant: str, alert: dict) -> None:
        """Drop the digest `alert` stored when it was decided, unless a later event has replaced
        it: an alert that was decided but could not be stored must not make its re-sends full
        duplicates of nothing. Raises redis errors as they come."""
        self._forget(keys=[self.keys.dedup(tenant, alert["fingerprint"])],
                     args=[alert["eventId"]])
