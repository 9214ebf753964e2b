"""Deduplication as Keep decides it (KEEP_SEMANTICS 3.3), one atomic Redis call per batch.

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
a full duplicate (Keep decides both as new; a quirk farm fixes). The decisions for a batch are
memoised under `decided:<batch>` until the batch is acked, so a redelivered batch replays them.
"""

from __future__ import annotations

import orjson
import xxhash

from farm.alert import BOOKKEEPING_FIELDS

# KEYS[1] memo key, KEYS[2..] dedup keys; ARGV[1] ttl, ARGV[2] memo ttl, then (digest, eventId)
# per dedup key. A stored value is the 16-byte digest followed by the eventId that set it.
DECIDE_LUA = """
local memo = redis.call('GET', KEYS[1])
if memo then return memo end
local ttl = ARGV[1]
local out = {}
for i = 2, #KEYS do
  local digest = ARGV[2 * i - 1]
  local event_id = ARGV[2 * i]
  local stored = redis.call('GET', KEYS[i])
  local decision
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
  out[i - 1] = decision
end
local decisions = table.concat(out)
redis.call('SET', KEYS[1], decisions, 'EX', ARGV[2])
return decisions
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
        self.nested = [f.split(".") for f in ignore_fields if "." in f]

    def content(self, alert: dict) -> dict:
        doc = alert.copy()  # a C-level copy and a few pops beat a filtering comprehension
        for key in self.top_level:
            doc.pop(key, None)
        for path in self.nested:
            doc = _drop_path(doc, path)
        return doc

    def digest(self, alert: dict) -> bytes:
        data = orjson.dumps(self.content(alert), default=_json_default,
                            option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
        return xxhash.xxh3_128_digest(data)

    def hexdigest(self, alert: dict) -> str:
        return self.digest(alert).hex()


class Deduplicator:
    """Decides new / partial / full for the alerts of one batch in one Redis round trip."""

    def __init__(self, redis, keys, ttl_seconds: int):
        self.keys = keys
        self.ttl = ttl_seconds
        self._decide = redis.register_script(DECIDE_LUA)

    def decide(self, memo_id: str, tenant: str, alerts: list[dict], digests: list[bytes]) -> str:
        """One decision letter per alert, in order. Raises redis errors as they come."""
        if not alerts:
            return ""
        dedup_key = self.keys.dedup
        keys = [self.keys.decided(memo_id)]
        args: list = [self.ttl, MEMO_TTL_SECONDS]
        for alert, digest in zip(alerts, digests, strict=False):
            keys.append(dedup_key(tenant, alert["fingerprint"]))
            args.append(digest)
            args.append(alert["eventId"])
        decisions = self._decide(keys=keys, args=args)
        return decisions.decode() if isinstance(decisions, bytes) else decisions
