"""The core sections: [farm], [redis], [workers], [store], [supervisor]."""

from __future__ import annotations

from farm.config.setting import host_port, key, parsed_by, section, size
from farm.units import parse_duration

_duration = parsed_by(parse_duration)


def _optional_duration(value: str) -> str | None:
    return _duration(value) if value else None


@section("farm")
class FarmSettings:
    data_dir: str = key("farm-data",
            "Folder for the embedded Redis, the SQLite store, metrics files and the pid file. "
            "Relative paths are relative to the working directory.")
    node_id: str = key("",
            "Name of this host among farms that share one Redis; worker ids are <node_id>.<slot>. "
            "Empty means the host name.")
    log_level: str = key("info",
            "Logging level.",
            choices=('debug', 'info', 'warning', 'error'))


@section("redis")
class RedisSettings:
    url: str = key("",
            "Redis URL (redis://, rediss:// or unix://), or a Redis Cluster as "
            "redis+cluster://[user:pass@]host1:port1,host2:port2,... (rediss+cluster:// for "
            "TLS). Empty: farm runs its own Redis server with append-only persistence in "
            "data_dir.")
    prefix: str = key("farm",
            "Prefix of every Redis key farm uses.")
    shards: int = key(0,
            "Queue shards: producers spread batches over them, workers take from all of them "
            "in turn; each shard's keys share one hash slot. 0 means 1 on a single Redis (the "
            "key names farm always used) and 16 on a Redis Cluster. Change it only with empty "
            "queues: batches in shards beyond the new count are no longer taken.",
            minimum=0, maximum=1024)
    max_batch_age: str = key("",
            "A batch older than this (since its envelope's sent_at) when a worker takes it goes "
            "to the dead-letter list with reason `expired` and its alerts count as "
            "alerts_expired, e.g. \"1h\" to skip stale alerts after a long outage. Empty: off.",
            check=_optional_duration)
    wait_replicas: int = key(0,
            "Replicas that must confirm a write (Redis WAIT) before the ingest gateway answers "
            "202 and before a worker acks a batch; 0 does not wait. With 1 or more, a master "
            "failover loses no accepted alert (docs/scaling.md).",
            minimum=0, maximum=16)
    wait_timeout_ms: int = key(1000,
            "How long WAIT may take for wait_replicas; past it the gateway answers 503 and the "
            "worker keeps the batch unacked and retries.",
            minimum=1, maximum=600_000)


@section("workers")
class WorkersSettings:
    count: int | str = key(0,
            "Worker processes; 0 means one per CPU; \"auto\" follows the backlog between min and "
            "max. `farm start --workers N` overrides it with a fixed count.",
            minimum=0, maximum=1024, words=("auto",))
    min: int = key(1,
            "With count = \"auto\": the fewest workers kept running.",
            minimum=1, maximum=1024)
    max: int = key(0,
            "With count = \"auto\": the most workers; 0 means one per CPU this farm may run on.",
            minimum=0, maximum=1024)
    scale_up_backlog: int = key(20,
            "With count = \"auto\": the farm is behind when more than this many batches per "
            "running worker wait in the queues.",
            minimum=1, maximum=1_000_000)
    scale_up_age_seconds: float = key(5.0,
            "With count = \"auto\": the farm is also behind when the oldest waiting batch was "
            "sent longer ago than this.",
            minimum=0.1, maximum=86_400)
    scale_up_after_seconds: float = key(10.0,
            "With count = \"auto\": a worker is added once the farm has been behind this long "
            "without a break.",
            minimum=0.0, maximum=86_400)
    scale_down_after_seconds: float = key(60.0,
            "With count = \"auto\": a worker is retired (drained) once the queues have been "
            "empty this long; every change restarts both clocks, so the count does not flap.",
            minimum=1.0, maximum=86_400)
    pin: bool = key(True,
            "Pin each worker to one CPU.")
    batch_max: int = key(2000,
            "Most alerts a worker deduplicates in one Redis round trip; larger batches are split. "
            "Bounds the time one Lua call holds Redis.",
            minimum=1, maximum=100_000)
    ring_mb: int = key(32,
            "Size of each worker's shared-memory ring to the indexer, in MiB. A batch whose "
            "encoded alerts exceed it is handed over in several records.",
            minimum=1, maximum=4096)
    heartbeat_seconds: int = key(30,
            "A worker whose Redis heartbeat is older than this is presumed dead and its in-flight "
            "batches are requeued by any live supervisor.",
            minimum=3, maximum=3600)


@section("store")
class StoreSettings:
    kind: str = key("sqlite",
            "Where alerts are indexed.",
            choices=('sqlite', 'elasticsearch'))
    path: str = key("",
            "SQLite database file. Empty means <data_dir>/farm.db.")
    url: str = key("",
            "Elasticsearch/OpenSearch URL(s), comma-separated, for kind = \"elasticsearch\".")
    index_prefix: str = key("farm",
            "Engine index names start with this: <index_prefix>-alerts-YYYY.MM.DD (history) and "
            "<index_prefix>-alerts-current (one document per fingerprint).")
    username: str = key("",
            "Engine basic-auth user (empty: none).")
    password: str = key("",
            "Engine basic-auth password.")
    api_key: str = key("",
            "Engine API key (base64 id:key), instead of basic auth.")
    verify_certs: bool = key(True,
            "Verify the engine's TLS certificate.")
    ca_certs: str = key("",
            "CA bundle for the engine's TLS certificate (empty: system).")
    replicas: int = key(1,
            "Replicas per index in the shipped template; 0 for a single-node cluster.",
            minimum=0, maximum=10)
    bulk_bytes: str = key("8MB",
            "The indexer sends a _bulk request once this much NDJSON is pending (or commit_ms has "
            "passed).",
            check=size)
    in_flight: int = key(3,
            "Most _bulk requests in flight at once; more waiting means workers pause.",
            minimum=1, maximum=64)
    gzip: bool = key(False,
            "Compress _bulk request bodies.")
    request_timeout: int = key(60,
            "Seconds before an engine request is abandoned and retried.",
            minimum=1, maximum=3600)
    lifecycle: str = key("auto",
            "History retention on the engine: an ILM policy (Elasticsearch), an ISM policy "
            "(OpenSearch), or farm deleting daily indices older than retention_days. auto picks "
            "ILM/ISM when the engine has it.",
            choices=('auto', 'ilm', 'ism', 'farm'))
    retention_days: int = key(30,
            "History older than this many days is deleted; 0 keeps it forever.",
            minimum=0, maximum=36_500)
    fts_history: bool = key(False,
            "Also index history (not only current state) for full-text search. Cuts SQLite insert "
            "speed about threefold. Without it `farm search --history` scans every stored event: "
            "the same matches, found more slowly.")
    raw_sample: float = key(0.0,
            "Share (0 to 1) of raw provider events kept as they arrived, beside the alerts they "
            "became (SQLite table alerts_raw, engine index <index_prefix>-raw), for the "
            "console's alert page. Chosen by batch id and position, so a redelivered batch keeps "
            "the same events. 0 keeps none.",
            minimum=0.0, maximum=1.0)
    raw_retention_days: int = key(7,
            "Kept raw events older than this many days are deleted; 0 keeps them as long as "
            "the history (retention_days).",
            minimum=0, maximum=36_500)
    commit_rows: int = key(5000,
            "The indexer hands its pending alerts to the store once gather_ms passed since the "
            "oldest of them arrived, when the store has no transaction in flight (group "
            "commit); while one commits, once this many alerts are pending, or commit_ms after "
            "the oldest of them arrived, whichever comes first.",
            minimum=1, maximum=1_000_000)
    gather_ms: int = key(25,
            "How long the indexer gathers alerts when the store is idle before handing them "
            "over: every commit (an SQLite transaction with its fsyncs, an engine _bulk request) "
            "has a fixed cost, so a few larger ones cost less CPU per alert than many tiny "
            "ones, for at most this much added latency (and never more than commit_ms). 0 hands "
            "them over at once.",
            minimum=0, maximum=60_000)
    commit_ms: int = key(200,
            "Longest time an alert waits in the indexer, while an earlier transaction is still "
            "committing, before its own is handed to the store.",
            minimum=1, maximum=60_000)


@section("supervisor")
class SupervisorSettings:
    http: str = key("127.0.0.1:9464",
            "Address of /metrics, /healthz and /status.",
            check=host_port)
    grace_seconds: int = key(30,
            "On SIGTERM, how long draining may take before processes are killed.",
            minimum=1, maximum=3600)
    restart_limit: int = key(5,
            "A process that exits by itself this many times within restart_window_seconds without "
            "ever becoming ready cannot start: the farm stops and says why. A process that was "
            "ready and then died (killed, out of memory, lost its store) is always restarted, "
            "with backoff.",
            minimum=1, maximum=1000)
    restart_window_seconds: int = key(60,
            "Window for restart_limit; a process that stays up this long after becoming ready "
            "starts its restart backoff afresh.",
            minimum=1, maximum=86_400)
    restart_backoff_max_seconds: int = key(30,
            "Longest wait before restarting a process that keeps dying (the wait doubles from 0.5 "
            "s with each death within restart_window_seconds).",
            minimum=1, maximum=3600)
