"""Every Redis key farm uses, its type, and who writes it. `<p>` is `[redis] prefix`.

- `<p>:q:critical`, `<p>:q:normal`      list of wire-v1 batches. Producers (loadgen, the ingest
  gateway, users' scripts) LPUSH; workers take from the right, critical first.
- `<p>:inflight:<worker id>`           list. A worker LMOVEs each batch here from a queue
  (newest on the left) and LTRIMs it off the right once the indexer has committed it. A
  supervisor moves a dead worker's list back to `<p>:q:critical`, so redelivered work goes
  first.
- `<p>:hb:<worker id>`                 string, the worker's lease token, with a TTL of
  `[workers] heartbeat_seconds`. The worker refreshes it with every ack; when it is gone, the
  worker is presumed dead and its inflight list is requeued.
- `<p>:dedup:<tenant>:<fingerprint>`   string: 16-byte content digest + the eventId that set
  it + a newline + that version's firing timeline (JSON array: status, severity, the two firing
  start times, the two counters, startedAt, the previous version's status and severity),
  TTL `[dedup] ttl_seconds`. Read and written by the dedup Lua script, one call per batch
  chunk; deleted by the forget script when the alert that set it could not be stored.
- `<p>:decided:<batch id>`             string: one decision letter (n/p/f) per alert of the
  batch, at the alert's position in the batch, written by the dedup script chunk by chunk
  (SETRANGE), TTL a day, deleted when the batch is acked. A redelivered batch replays these
  decisions by position, however `[workers] batch_max` cuts it this time. When maintenance
  windows took some of the batch's alerts, this key, `timeline:` and `incidents:` are named
  `<batch id>~<16 hex digits>` instead, the digits naming what the windows did (position,
  window, action): a redelivery whose windows did something else decides afresh.
- `<p>:timeline:<batch id>`            hash: position in the batch -> the firing timeline the
  dedup script computed for that alert (JSON), written with the decisions and dropped with them
  on ack, so a redelivered batch replays the same timeline even after later versions of its
  fingerprints were stored.
- `<p>:incidents:<batch id>`           hash: the correlation script's memo of one batch: `upto`
  (how many of the batch's alerts it decided), position -> JSON [incident ids, incident ids
  newly linked], `s:<incident id>` -> the incident's snapshot after the batch. Written by the
  correlation script chunk by chunk (and by the resolve script for a control batch), TTL a
  day, deleted when the batch is acked; a redelivered batch replays it.
- `<p>:incgroup:<tenant>:<rule>:<group key>`  string: the id of the newest incident of that
  rule and group key, TTL `[correlation] ttl_seconds`. Written by the correlation script.
- `<p>:incident:<incident id>`          hash: `state` = an incident's state as one JSON object
  (status, name parts and values, severity, counts, first/last fingerprint, visibility,
  sub-rules matched, start/last seen, same_incident_in_the_past_id, version...), `touched` = when
  an alert last joined or updated it (full precision; it decides the timeframe), `count` = its
  alerts_count, for people reading Redis, and `m:<fingerprint>` per member = JSON [latest
  status, unresolvedCounter, lastReceived], for resolve_on and visibility. TTL `[correlation]
  ttl_seconds`. Written by the correlation and resolve scripts.
- `<p>:incfp:<tenant>:<fingerprint>`    set: the unresolved incidents the fingerprint belongs
  to (a new version of it updates them even when it matches no rule). Same writers and TTL.
- `<p>:incnumber:<tenant>`              integer: the last incident running number (for
  incident_prefix), INCR by the correlation script when it opens an incident.
- `<p>:dlq`                            list of dead letters (msgpack maps: reason, stage, at,
  batch, tenant, provider, payload). Workers and the indexer LPUSH.
- `<p>:rl:<tenant>:<provider>`         string: the ingest gateways' rate-limit bucket (GCRA) of
  one tenant and provider, its theoretical arrival time in microseconds of Redis time, with a
  TTL of the time until the bucket is full again. One Lua call per check.
- `<p>:maintenance`                    hash: maintenance window name -> the window as JSON (the
  keys of a `[[window]]` table, times as ISO 8601 UTC). Written only by `farm maintenance
  add|end`, in the same transaction that increments `<p>:maintenance:version`; `end` sets the
  window's end to now (it stays, so a redelivered batch is judged as before) and windows ended
  over a week ago are removed. Workers read both in one transaction when the version changed.
- `<p>:maintenance:version`            integer, incremented by every `farm maintenance add|end`.
  Each worker GETs it at most once a second, to notice new or ended windows cheaply.
- `<p>:notify`, `<p>:notify:inflight:<node>`, `<p>:notify:overflowed`   outbound notifications
  (farm/notify/outbox.py): workers LPUSH in the ack script; the node's sender takes them.
- `<p>:node:<node id>`                 string, the node registry (farm/nodes.py): each supervisor's
  record as JSON, TTL `[workers] heartbeat_seconds`; its expiry marks a dead host.
- `<p>:stats:<counter>`                integer counters (see STAT_NAMES), incremented by the
  worker in the same transaction that acks a batch, so they count each batch exactly once.
"""

from __future__ import annotations

LANES = ("critical", "normal")

STAT_NAMES = (
    "alerts_received",
    "alerts_indexed",
    "alerts_duplicate",
    "alerts_dead",
    # Alerts a maintenance window dropped: never deduplicated or stored (farm/maintenance/).
    "alerts_maintenance",
    # Events read as holding no alert (a webhook with an empty `alerts`, an empty Keep list):
    # each counts once in alerts_received, so that every event is accounted for.
    "events_empty",
    "batches_received",
    "batches_dead",
    "batches_redelivered",
)

# What every unit of alerts_received ends as, exactly one each (docs/architecture.md):
# alerts_received = alerts_indexed + alerts_duplicate + alerts_dead + alerts_maintenance
#                   + events_empty.
SETTLED = ("alerts_indexed", "alerts_duplicate", "alerts_dead", "alerts_maintenance",
           "events_empty")


class Keys:
    """Key names under one prefix."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.dlq = f"{prefix}:dlq"
        self.maintenance = f"{prefix}:maintenance"
        self.maintenance_version = f"{prefix}:maintenance:version"

    def queue(self, lane: str) -> str:
        return f"{self.prefix}:q:{lane}"

    def inflight(self, worker_id: str) -> str:
        return f"{self.prefix}:inflight:{worker_id}"

    def inflight_pattern(self) -> str:
        return f"{self.prefix}:inflight:*"

    def worker_of_inflight(self, key: str) -> str:
        return key[len(self.prefix) + len(":inflight:"):]

    def heartbeat(self, worker_id: str) -> str:
        return f"{self.prefix}:hb:{worker_id}"

    def dedup(self, tenant: str, fingerprint: str) -> str:
        return f"{self.prefix}:dedup:{tenant}:{fingerprint}"

    def decided(self, batch_id: str) -> str:
        return f"{self.prefix}:decided:{batch_id}"

    def timeline(self, batch_id: str) -> str:
        return f"{self.prefix}:timeline:{batch_id}"

    def incidents_memo(self, batch_id: str) -> str:
        return f"{self.prefix}:incidents:{batch_id}"

    def incident(self, incident_id: str) -> str:
        return f"{self.prefix}:incident:{incident_id}"

    def rate_limit(self, tenant: str, provider: str) -> str:
        return f"{self.prefix}:rl:{tenant}:{provider}"

    def stat(self, name: str) -> str:
        return f"{self.prefix}:stats:{name}"
