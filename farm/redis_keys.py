"""Every Redis key farm uses, its type, its hash slot, and who writes it (the same table is in
docs/architecture.md, "Redis keys"). `<p>` is `[redis] prefix`.

Every atomic step (a Lua script, a MULTI) touches keys of one hash slot, so that farm runs on a
Redis Cluster (`redis+cluster://...`). The hash tags:
  `<S>` = `<p>:{s<n>}`, queue shard n of `[redis] shards` (default 16 on a cluster); plain `<p>`
        on a single Redis with one shard (the default), so those names never changed.
  `<D>` = `<p>:{d<b>}`, dedup bucket b = xxh3-64(fingerprint) % DEDUP_BUCKETS, on a cluster.
  `<T>` = `<p>:{t:<tenant>}`, all of a tenant's correlation state, on a cluster.
  `<M>` = `<p>:{m}`, maintenance, on a cluster.
On a single Redis `<D>`, `<T>` and `<M>` are plain `<p>`.

- `<S>:q:critical`, `<S>:q:normal`     list of wire-v1 batches. Producers (loadgen, the ingest
  gateway, users' scripts) LPUSH, each batch to the next shard; workers take from the right,
  critical first within a shard, the shards in turn.
- `<S>:inflight:<worker id>`           list, one per worker and shard. A worker LMOVEs each batch
  here from the shard's queue (newest on the left) and the shard's ack script LTRIMs it off the
  right once the indexer has committed it. A supervisor moves a dead worker's list back to the
  shard's `<S>:q:critical`, so redelivered work goes first.
- `<S>:hb:<worker id>`                 string, the worker's lease token on that shard, with a TTL
  of `[workers] heartbeat_seconds`. Refreshed by the shard's ack script (every shard's at least
  once a second); when it is gone, the shard's inflight list is requeued.
- `<S>:workers`                        set of the worker ids that may hold `<S>:inflight:<id>`:
  a worker adds itself when it takes its lease, before it takes anything, and removes itself
  when it stops cleanly; a recovery removes a dead host's workers. Supervisors and `/status`
  read it instead of scanning the keyspace, whose size grows with the dedup keys.
- `<S>:stats:<counter>`                integer counters (see STAT_NAMES), per shard, incremented by
  the shard's ack script with the batches it acks, so they count each batch exactly once;
  readers sum the shards.
- `<S>:dlq`                            list of dead letters (msgpack maps: reason, stage, at,
  batch, tenant, provider, payload). The ack scripts LPUSH; the indexer (shard 0) too.
- `<S>:notify`, `<S>:notify:inflight:<node>`, `<S>:notify:overflowed`   outbound notifications
  (farm/notify/outbox.py): the shard's ack script LPUSHes; the node's sender takes from every
  shard in turn.
- `<D>:dedup:<tenant>:<fingerprint>`   string: 16-byte content digest + the eventId that set
  it + a newline + that version's firing timeline (JSON array: status, severity, the two firing
  start times, the two counters, startedAt, the previous version's status and severity),
  TTL `[dedup] ttl_seconds`. Read and written by the dedup Lua script, one call per batch
  chunk and bucket (pipelined); deleted by the forget script when the alert that set it could
  not be stored.
- `<D>:decided:<batch id>`             string: one decision letter (n/p/f) per alert of the
  batch in that bucket, at the alert's position in the batch, written by the dedup script
  (SETRANGE), TTL a day, deleted once the batch is acked (by the ack script on a single Redis;
  on a cluster after it succeeded, with the next batch's dedup requests). A redelivered batch
  replays these decisions by position, however `[workers] batch_max` cuts it this time. When
  maintenance windows took some of the batch's alerts, this key, `timeline:` and `incidents:`
  are named `<batch id>~<16 hex digits>` instead, the digits naming what the windows did
  (position, window, action): a redelivery whose windows did something else decides afresh.
- `<D>:timeline:<batch id>`            hash: position in the batch -> the firing timeline the
  dedup script computed for that alert (JSON), written with the decisions and dropped with them,
  so a redelivered batch replays the same timeline even after later versions of its
  fingerprints were stored.
- `<T>:incidents:<batch id>`           hash: the correlation script's memo of one batch: `upto`
  (how many of the batch's alerts it decided), position -> JSON [incident ids, incident ids
  newly linked], `s:<incident id>` -> the incident's snapshot after the batch. Written by the
  correlation script chunk by chunk (and by the control scripts: resolve, acknowledge,
  confirm), TTL a day, dropped with the batch's other memos.
- `<T>:incgroup:<tenant>:<rule>:<group key>`  string: the id of the newest incident of that
  rule and group key, TTL `[correlation] ttl_seconds`. Written by the correlation script.
- `<T>:incident:<incident id>`          hash: `state` = an incident's state as one JSON object
  (status, name parts and values, severity, counts, first/last fingerprint, visibility,
  sub-rules matched, start/last seen, same_incident_in_the_past_id, version...), `touched` = when
  an alert last joined or updated it (full precision; it decides the timeframe), `count` = its
  alerts_count, for people reading Redis, and `m:<fingerprint>` per member = JSON [latest
  status, unresolvedCounter, lastReceived], for resolve_on and visibility. TTL `[correlation]
  ttl_seconds`. Written by the correlation and control scripts.
- `<T>:incfp:<tenant>:<fingerprint>`    set: the unresolved incidents the fingerprint belongs
  to (a new version of it updates them even when it matches no rule). Same writers and TTL.
- `<T>:incnumber:<tenant>`              integer: the last incident running number (for
  incident_prefix), INCR by the correlation script when it opens an incident.
- `<p>:rl:<tenant>:<provider>`         string: the ingest gateways' rate-limit bucket (GCRA) of
  one tenant and provider, its theoretical arrival time in microseconds of Redis time, with a
  TTL of the time until the bucket is full again. One Lua call per check, on this one key.
- `<M>:maintenance`                    hash: maintenance window name -> the window as JSON (the
  keys of a `[[window]]` table, times as ISO 8601 UTC). Written only by `farm maintenance
  add|end`, in the same transaction that increments `<M>:maintenance:version`; `end` sets the
  window's end to now (it stays, so a redelivered batch is judged as before) and windows ended
  over a week ago are removed. Workers read both in one transaction when the version changed.
- `<M>:maintenance:version`            integer, incremented by every `farm maintenance add|end`.
  Each worker GETs it at most once a second, to notice new or ended windows cheaply.
- `<M>:maintenance:release`            string with a TTL of `[maintenance] release_seconds`: the
  node whose maintenance watcher makes this round's releases (SET NX; farm/maintenance/watcher.py).
- `<p>:node:<node id>`                 string, the node registry (farm/nodes.py): each supervisor's
  record as JSON, TTL `[workers] heartbeat_seconds`; its expiry marks a dead host.
- `<p>:nodes`                          sorted set: node id -> when its record expires (unix ms),
  written with the record; the index of the registry (live nodes score in the future). A dead
  node stays until its notify sender's inflight lists have been put back.
"""

from __future__ import annotations

import xxhash

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
    # Batches older than `[redis] max_batch_age` when taken, and their events (each counts as
    # one alert, as for a dead batch): sent to the dead-letter list with reason `expired`.
    "alerts_expired",
    "batches_expired",
)

# What every unit of alerts_received ends as, exactly one each (docs/architecture.md):
# alerts_received = alerts_indexed + alerts_duplicate + alerts_dead + alerts_maintenance
#                   + events_empty + alerts_expired.
SETTLED = ("alerts_indexed", "alerts_duplicate", "alerts_dead", "alerts_maintenance",
           "events_empty", "alerts_expired")


# Dedup buckets in cluster mode: a fingerprint's dedup key and the batch memos that go with it
# share the hash tag `{d<bucket>}`. Fixed, so changing `[redis] shards` never moves dedup state.
DEDUP_BUCKETS = 16
# `[redis] shards = 0` means this many queue shards on a Redis Cluster (1 on a single instance).
CLUSTER_SHARDS = 16


def dedup_bucket(fingerprint: str) -> int:
    """The dedup bucket of a fingerprint (stable across processes and hosts)."""
    return xxhash.xxh3_64_intdigest(fingerprint.encode("utf-8", "surrogatepass")) % DEDUP_BUCKETS


class Keys:
    """Key names under one prefix.

    `shards` queue shards; `cluster` puts every key an atomic step touches under one hash tag
    (the module docstring). With one shard on a single instance every name is the one farm has
    always used."""

    def __init__(self, prefix: str, shards: int = 1, cluster: bool = False):
        self.prefix = prefix
        self.cluster = cluster
        self.shards = max(1, shards)
        self.sharded = cluster or self.shards > 1
        self.dlq = self.dead_letters(0)
        tagged = f"{prefix}:{{m}}" if cluster else prefix
        self.maintenance = f"{tagged}:maintenance"
        self.maintenance_version = f"{tagged}:maintenance:version"
        self.maintenance_release_lock = f"{tagged}:maintenance:release"

    # -- queue shards: everything one take, ack or recovery touches --------------------------
    def shard_prefix(self, shard: int) -> str:
        return f"{self.prefix}:{{s{shard}}}" if self.sharded else self.prefix

    def queue(self, lane: str, shard: int = 0) -> str:
        return f"{self.shard_prefix(shard)}:q:{lane}"

    def inflight(self, worker_id: str, shard: int = 0) -> str:
        return f"{self.shard_prefix(shard)}:inflight:{worker_id}"

    def inflight_pattern(self, worker_glob: str = "*") -> str:
        where = f"{self.prefix}:{{s*}}" if self.sharded else self.prefix
        return f"{where}:inflight:{worker_glob}"

    def of_inflight(self, key: str) -> tuple[str, int]:
        """(worker id, shard) of an inflight list's name."""
        head, _, worker_id = key.partition(":inflight:")
        if not self.sharded:
            return worker_id, 0
        return worker_id, int(head[head.rindex("{s") + 2:-1])

    def heartbeat(self, worker_id: str, shard: int = 0) -> str:
        return f"{self.shard_prefix(shard)}:hb:{worker_id}"

    def workers(self, shard: int = 0) -> str:
        return f"{self.shard_prefix(shard)}:workers"

    def stat(self, name: str, shard: int = 0) -> str:
        return f"{self.shard_prefix(shard)}:stats:{name}"

    def dead_letters(self, shard: int) -> str:
        return f"{self.shard_prefix(shard)}:dlq"

    def all_shards(self) -> range:
        return range(self.shards)

    # -- dedup: one bucket's dedup keys and memos in one slot --------------------------------
    def dedup_prefix(self, bucket: int) -> str:
        return f"{self.prefix}:{{d{bucket}}}" if self.cluster else self.prefix

    def bucket(self, fingerprint: str) -> int:
        return dedup_bucket(fingerprint) if self.cluster else 0

    def buckets(self) -> range:
        return range(DEDUP_BUCKETS if self.cluster else 1)

    def dedup(self, tenant: str, fingerprint: str) -> str:
        return f"{self.dedup_prefix(self.bucket(fingerprint))}:dedup:{tenant}:{fingerprint}"

    def decided(self, batch_id: str, bucket: int = 0) -> str:
        return f"{self.dedup_prefix(bucket)}:decided:{batch_id}"

    def timeline(self, batch_id: str, bucket: int = 0) -> str:
        return f"{self.dedup_prefix(bucket)}:timeline:{batch_id}"

    # -- correlation: all of one tenant's incident state in one slot -------------------------
    def correlation_prefix(self, tenant: str) -> str:
        return f"{self.prefix}:{{t:{tenant}}}" if self.cluster else self.prefix

    def incidents_memo(self, batch_id: str, tenant: str = "default") -> str:
        return f"{self.correlation_prefix(tenant)}:incidents:{batch_id}"

    def incident(self, incident_id: str, tenant: str = "default") -> str:
        return f"{self.correlation_prefix(tenant)}:incident:{incident_id}"

    def memo_keys(self, memo_id: str, tenant: str) -> list[str]:
        """Every memo a batch (or its maintenance variant `memo_id`) may have left."""
        return [*(key for b in self.buckets()
                  for key in (self.decided(memo_id, b), self.timeline(memo_id, b))),
                self.incidents_memo(memo_id, tenant)]

    def rate_limit(self, tenant: str, provider: str) -> str:
        return f"{self.prefix}:rl:{tenant}:{provider}"


def keys_for(cfg, url: str | None = None) -> Keys:
    """The keys of a farm with this config, on the Redis at url (default [redis] url)."""
    from farm.redisconn import is_cluster_url

    cluster = is_cluster_url(cfg.redis.url if url is None else url)
    shards = cfg.redis.shards or (CLUSTER_SHARDS if cluster else 1)
    return Keys(cfg.redis.prefix, shards=shards, cluster=cluster)
