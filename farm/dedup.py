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

from collections.abc import Callable

import orjson
import xxhash

from farm.alert import BOOKKEEPING_FIELDS, json_default
from farm.redisconn import send_scripts

# KEYS[1] the batch's memo, KEYS[2] its timeline memo, KEYS[3..] dedup keys (on a Redis Cluster:
# those of one dedup bucket, all in the bucket's slot); ARGV[1] ttl, ARGV[2] memo ttl, then per
# dedup key: the alert's position in the batch (from 0), digest, eventId, status, severity,
# lastReceived, receivedAt.
# A stored value is the 16-byte digest, the eventId that set it, a newline, and the JSON array
# [status, severity, firingStartTime, firingStartTimeSinceLastResolved, firingCounter,
#  unresolvedCounter, startedAt, previous status, previous severity] of that stored version
# ("" stands for none). Returns {decision letters, that array as JSON per alert ("" for a full
# duplicate)}.
_DECIDE_TEMPLATE = r"""
local function timeline(prev, status, severity, received, first)
  local fst, since, fired, unresolved
  if status ~= 'firing' then fst = ''
  elseif prev and prev[1] == 'firing' then fst = prev[3]
  else fst = received end
  if status == 'resolved' then since = ''
  elseif prev and prev[1] == 'resolved' and status == 'firing' then since = received
  elseif prev and prev[4] ~= '' then since = prev[4]
  elseif not prev and status == 'firing' then since = received
  else since = '' end
  if status == 'acknowledged' then fired = 0
  elseif not prev or prev[1] == 'acknowledged' then fired = 1
  else fired = prev[5] + 1 end
  if status == 'resolved' then unresolved = 0
  elseif not prev or prev[1] == 'resolved' then unresolved = 1
  else unresolved = prev[6] + 1 end
  return {status, severity, fst, since, fired, unresolved, prev and prev[7] or first}
end

local ttl = ARGV[1]

-- Store this version with its timeline (and its predecessor's status and severity, which a
-- rule may compare); returns the timeline as JSON.
local function remember(key, digest, event_id, prev, a)
  local now = timeline(prev, ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5])
  now[8] = prev and prev[1] or ''
  now[9] = prev and prev[2] or ''
  local encoded = cjson.encode(now)
  redis.call('SET', key, digest .. event_id .. '\n' .. encoded, 'EX', ttl)
  return encoded
end

local memo = redis.call('GET', KEYS[1]) or ''
local out, times, memo_times, fresh = {}, {}, {}, {}
for i = 3, #KEYS do
  local a = 3 + (i - 3) * 7
  local position = tonumber(ARGV[a]) + 1
  local decision = string.sub(memo, position, position)
  local line = ''
  if decision == 'n' or decision == 'p' or decision == 'f' or decision == 's' then
    if decision == 'n' or decision == 'p' then
      line = redis.call('HGET', KEYS[2], position) or ''
    end
  else
    a = a + 1
    local digest, event_id = ARGV[a], ARGV[a + 1]
    -- GETEX renews the dedup window as it reads: a full duplicate needs no EXPIRE of its own
    local stored = redis.call('GETEX', KEYS[i], 'EX', ttl)
    local stored_id, state = nil, nil
    if stored then
      local cut = string.find(stored, '\n', 17, true)
      stored_id = string.sub(stored, 17, cut and cut - 1 or -1)
      if cut then state = cjson.decode(string.sub(stored, cut + 1)) end
    end
    if GUARD then
      decision = 's'
    elseif stored and stored_id == event_id then
      decision = 'n'  -- this very event set it (a re-sent batch): the same version again
      if state then
        line = cjson.encode(state)
      else  -- stored by a farm without the timeline: start one here
        line = remember(KEYS[i], digest, event_id, nil, a)
      end
    elseif stored and string.sub(stored, 1, 16) == digest then
      decision = 'f'
    else
      decision = stored and 'p' or 'n'
      line = remember(KEYS[i], digest, event_id, state, a)
    end
    if line ~= '' then
      memo_times[#memo_times + 1] = position
      memo_times[#memo_times + 1] = line
    end
    fresh[#fresh + 1] = i - 2
  end
  out[i - 2] = decision
  times[i - 2] = line
end
-- memoise the fresh decisions (fresh holds their indexes in out), one SETRANGE per run of
-- consecutive positions
local function pos(k) return tonumber(ARGV[3 + (fresh[k] - 1) * 7]) end
local run = 1
for k = 1, #fresh do
  if k == #fresh or pos(k + 1) ~= pos(k) + 1 then
    local letters = {}
    for m = run, k do letters[#letters + 1] = out[fresh[m]] end
    redis.call('SETRANGE', KEYS[1], pos(run), table.concat(letters))
    run = k + 1
  end
end
if #fresh > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
local decisions = table.concat(out)
for from = 1, #memo_times, 2000 do  -- unpack() has a stack limit
  redis.call('HSET', KEYS[2], unpack(memo_times, from, math.min(from + 1999, #memo_times)))
end
if #memo_times > 0 then
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return {decisions, times}
"""
DECIDE_LUA = _DECIDE_TEMPLATE.replace("GUARD", "false")
# The same decisions for a maintenance release (farm/maintenance/release.py), guarded: after the
# 7 arguments of every dedup key, one more per key, the eventId that must have set it. An alert
# whose fingerprint has been stored again since (a newer version, or this release already) is
# skipped: `s`, nothing stored. One whose dedup key expired is decided as usual.
RELEASE_LUA = _DECIDE_TEMPLATE.replace(
    "GUARD", "stored and stored_id ~= ARGV[3 + (#KEYS - 2) * 7 + i - 3]")

# KEYS[1] a dedup key, ARGV[1] an eventId: delete the key only if that event set it.
FORGET_LUA = r"""
local stored = redis.call('GET', KEYS[1])
local cut = stored and string.find(stored, '\n', 17, true)
if stored and string.sub(stored, 17, cut and cut - 1 or -1) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

NEW, PARTIAL, FULL = "n", "p", "f"
SKIPPED = "s"  # a maintenance release whose fingerprint was stored again meanwhile
DECISION_NAMES = {NEW: "new", PARTIAL: "partial", FULL: "full"}  # as metrics label them

# Set on every stored version (docs/keep-compatibility.md#firing-timeline), in the order of the
# script's timeline array after its status and severity.
TIMELINE_FIELDS = ("firingStartTime", "firingStartTimeSinceLastResolved", "firingCounter",
                   "unresolvedCounter", "startedAt", "previousStatus", "previousSeverity")


def apply_timeline(alert: dict, timeline: list) -> None:
    """Set the timeline fields from the script's array; "" stands for none."""
    for name, value in zip(TIMELINE_FIELDS, timeline[2:], strict=True):
        alert[name] = None if value == "" else value
# A memo outlives its batch only if the worker dies and nobody requeues the batch for a day.
MEMO_TTL_SECONDS = 86_400


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

    def covers(self, paths) -> bool:
        """Whether alerts with the same digest hold the same values at every one of `paths`
        (field paths as tuples): none is an ignored field, inside one, or holds one."""
        for path in paths:
            if path[0] in self.top_level:
                return False
            for ignored in self.nested:
                common = min(len(path), len(ignored))
                if tuple(ignored[:common]) == tuple(path[:common]):
                    return False
        return True

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
        data = orjson.dumps(self.content(alert), default=json_default,
                            option=orjson.OPT_SORT_KEYS)
        if self._hides_a_container(alert):
            # The ignored part is not in the digest but is in the document: check it too.
            orjson.dumps(alert, default=json_default)
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
        self.redis = redis
        self.keys = keys
        self.ttl = ttl_seconds
        self._decide = redis.register_script(DECIDE_LUA)
        self._release = redis.register_script(RELEASE_LUA)
        self._forget = redis.register_script(FORGET_LUA)

    def decide(self, batch_id: str, start: int, tenant: str, alerts: list[dict],
               digests: list[bytes], expect: list[str] | None = None) -> str:
        """The decisions `send` reads (see there), waited for."""
        return self.send(batch_id, start, tenant, alerts, digests, expect)()

    def send(self, batch_id: str, start: int, tenant: str, alerts: list[dict],
             digests: list[bytes], expect: list[str] | None = None) -> Callable[[], str]:
        """Send the call that decides the chunk and return the function that reads its
        decisions (redisconn.send_scripts: on a single Redis the caller works meanwhile):
        one decision letter per alert of the chunk that starts at position `start` of the
        batch, in order; replayed from the batch's memo where it has them. Every alert that is
        not a full duplicate gets its firing timeline (TIMELINE_FIELDS) in place, computed from
        the fingerprint's previous stored version in the same call. On a Redis Cluster, one
        call per dedup bucket the chunk touches, pipelined (one request per node). Raises redis
        errors as they come.

        `expect` (a maintenance release) gives per alert the eventId that must have set its
        fingerprint's dedup key; an alert whose key another event set since is SKIPPED."""
        if not alerts:
            return lambda: ""
        groups: dict[int, list[int]] = {}
        bucket = self.keys.bucket
        for i, alert in enumerate(alerts):
            groups.setdefault(bucket(alert["fingerprint"]), []).append(i)
        calls = []
        for b, members in groups.items():
            keys = [self.keys.decided(batch_id, b), self.keys.timeline(batch_id, b)]
            args: list = [self.ttl, MEMO_TTL_SECONDS]
            for i in members:
                alert = alerts[i]
                keys.append(self.keys.dedup(tenant, alert["fingerprint"]))
                args += (start + i, digests[i], alert["eventId"], alert["status"] or "",
                         alert["severity"] or "", alert["lastReceived"] or "",
                         alert["receivedAt"])
            if expect is None:
                calls.append((self._decide, keys, args))
            else:
                calls.append((self._release, keys, [*args, *(expect[i] for i in members)]))
        replies = send_scripts(self.redis, calls)

        def read() -> str:
            letters = [""] * len(alerts)
            for members, (got, timelines) in zip(groups.values(), replies(), strict=True):
                got = got.decode() if isinstance(got, bytes) else got
                for i, letter, line in zip(members, got, timelines, strict=True):
                    letters[i] = letter
                    if line:
                        apply_timeline(alerts[i], orjson.loads(line))
            return "".join(letters)
        return read

    def forget(self, tenant: str, alert: dict) -> None:
        """Drop the digest `alert` stored when it was decided, unless a later event has replaced
        it: an alert that was decided but could not be stored must not make its re-sends full
        duplicates of nothing. Raises redis errors as they come."""
        self._forget(keys=[self.keys.dedup(tenant, alert["fingerprint"])],
                     args=[alert["eventId"]])
