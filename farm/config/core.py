"""The core sections: [farm], [redis], [workers], [store], [supervisor]."""

from __future__ import annotations

from farm.config.setting import host_port, key, section, size


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
            "Redis URL (redis://, rediss:// or unix://). Empty: farm runs its own Redis server "
            "with append-only persistence in data_dir.")
    prefix: str = key("farm",
            "Prefix of every Redis key farm uses.")


@section("workers")
class WorkersSettings:
    count: int = key(0,
            "Worker processes; 0 means one per CPU. `farm start --workers N` overrides it.",
            minimum=0, maximum=1024)
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
            "The indexer commits a transaction once this many alerts are pending, or commit_ms "
            "after the oldest of them arrived, whichever comes first.",
            minimum=1, maximum=1_000_000)
    commit_ms: int = key(200,
            "Longest time an alert waits in the indexer before its transaction commits.",
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
