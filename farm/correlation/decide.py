"""Incident decisions in Redis: one atomic Lua call per batch chunk
(docs/keep-compatibility.md#correlation).

The worker matches rules in Python (farm/correlation/matching.py), then `Decider.decide` sends
the chunk's alerts and their matches in one call. The script, for each alert in order:
  1. gives every active incident of the alert's fingerprint the alert's new status,
     unresolvedCounter and lastReceived, and checks the incident's resolve_on;
  2. for each match (rule, group key): joins the newest incident of (tenant, rule, group key)
     unless it is resolved or untouched for longer than the rule's timeframe, else opens a new
     one, linked to the expired one, if the alert is firing; then attaches the alert (counts,
     severity, sources, services, name, visibility by threshold and create_on, resolve_on).
Time is the batch's sent_at, never the clock, and incident ids are derived from (tenant, rule,
group key, the eventId that opened it), so a redelivered batch decides the same. Because one
script decides the whole chunk, two workers adding alerts of the same group at once make one
incident.

Each chunk's outcome is memoised under `<p>:incidents:<batch id>` (hash: `upto` = how many of the
batch's alerts were decided, position -> [incident ids, newly linked incident ids], `s:<id>` ->
the incident's snapshot after this batch), deleted when the batch is acked. A redelivered batch
replays the memo by position, so membership is never counted twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from farm.alert import SEVERITY_ORDER, iso_ms
from farm.dedup import MEMO_TTL_SECONDS
from farm.redisconn import scripts_ahead

_HERE = Path(__file__).parent
_STATE = (_HERE / "state.lua").read_text()
CHUNK_LUA = _STATE + (_HERE / "chunk.lua").read_text()
RESOLVE_LUA = _STATE + (_HERE / "resolve.lua").read_text()
CONFIRM_LUA = _STATE + (_HERE / "confirm.lua").read_text()
ACKNOWLEDGE_LUA = _STATE + (_HERE / "acknowledge.lua").read_text()


@dataclass
class Decided:
    """What one chunk's call decided: per alert position its incident ids and the ids it was
    newly linked to; every touched incident's snapshot; opened/updated/resolved counts."""

    incidents: dict[int, tuple[list[str], list[str]]] = field(default_factory=dict)
    snapshots: list[dict] = field(default_factory=list)
    opened: int = 0
    updated: int = 0
    resolved: int = 0


def _list(value: object) -> list:
    return value if isinstance(value, list) else []  # the script's empty list reads as {}


def snapshot_of(raw: str | bytes) -> dict:
    """A snapshot as the script encodes it, with its lists as lists."""
    doc = orjson.loads(raw)
    doc["sources"] = _list(doc.get("sources"))
    doc["services"] = _list(doc.get("services"))
    return doc


class Decider:
    """Runs the incident scripts of one worker (see the module docstring)."""

    def __init__(self, redis, keys, ttl_seconds: int):
        self.redis = redis
        self.keys = keys
        self.ttl = ttl_seconds
        self._chunk = redis.register_script(CHUNK_LUA)
        self._by_hand = {"resolve": redis.register_script(RESOLVE_LUA),
                         "confirm": redis.register_script(CONFIRM_LUA),
                         "acknowledge": redis.register_script(ACKNOWLEDGE_LUA)}

    def decide(self, batch_id: str, tenant: str, sent_at: float, start: int, end: int,
               items: list[list], rules: dict[str, list]) -> Callable[[], Decided]:
        """Send the call that decides a chunk whose alerts sit at positions [start, end) of the
        batch, and return a function that reads its outcome: the worker prepares its next
        batch while the script runs (redisconn.scripts_ahead). `items` are [position,
        fingerprint, eventId, status, unresolvedCounter, lastReceived, severity order,
        sources, service, matches] for its alerts that are not full duplicates; `rules` the
        specs (CorrelationRule.spec) of the rules matched. Both raise redis errors as they
        come."""
        replies = scripts_ahead(self.redis, [(
            self._chunk, [self.keys.incidents_memo(batch_id, tenant)],
            [self.chunk_request(tenant, sent_at, start, end, items, rules)])])
        return lambda: _decided(replies()[0])

    def chunk_request(self, tenant: str, sent_at: float, start: int, end: int,
                      items: list[list], rules: dict[str, list]) -> bytes:
        """The chunk script's argument (decide's arguments but the batch id, which names the
        memo key)."""
        # "p": every key the script names starts with it: on a Redis Cluster it carries the
        # tenant's hash tag, so the whole call touches that one slot.
        return orjson.dumps({"p": self.keys.correlation_prefix(tenant), "t": tenant,
                             "now": sent_at, "iso": iso_ms(sent_at), "ttl": self.ttl,
                             "mttl": MEMO_TTL_SECONDS, "start": start, "end": end,
                             "rules": rules or {"": []}, "items": items})

    def by_hand(self, action: str, batch_id: str, tenant: str, sent_at: float,
                incident_id: str) -> dict | None:
        """Resolve, acknowledge (a firing one) or confirm (a candidate) one incident by hand
        (`action`); memoised under the control batch's id. Returns the incident's snapshot
        after it, or None when Redis holds no such incident for the tenant (or it is not in a
        state the action applies to)."""
        request = {"p": self.keys.correlation_prefix(tenant), "t": tenant, "now": sent_at,
                   "iso": iso_ms(sent_at), "ttl": self.ttl, "mttl": MEMO_TTL_SECONDS,
                   "id": incident_id}
        raw = self._by_hand[action](keys=[self.keys.incidents_memo(batch_id, tenant)],
                                    args=[orjson.dumps(request)])
        return snapshot_of(raw) if raw else None


def _decided(raw: bytes) -> Decided:
    out, snaps, (opened, updated, resolved) = orjson.loads(raw)
    decided = Decided(opened=opened, updated=updated, resolved=resolved)
    for position, ids, links in out:
        decided.incidents[position] = (_list(ids), _list(links))
    decided.snapshots = [snapshot_of(s) for s in _list(snaps)]
    return decided


def alert_item(position: int, alert: dict, matches: list) -> list:
    """The script's view of one alert."""
    source = alert.get("source")
    return [position, alert["fingerprint"], alert["eventId"], alert.get("status") or "",
            alert.get("unresolvedCounter") or (0 if alert.get("status") == "resolved" else 1),
            alert.get("lastReceived") or "", SEVERITY_ORDER.get(alert.get("severity"), 2),
            [s for s in source if isinstance(s, str)] if isinstance(source, list) else [],
            alert.get("service") if isinstance(alert.get("service"), str) else "", matches]
