"""Words that make generated alerts read like real ones: alert names, services, hosts, labels,
and filler text of a chosen length. Every choice goes through the caller's seeded Random."""

from __future__ import annotations

import random

SERVICES = ("checkout", "payments", "storefront", "search", "auth", "inventory", "shipping",
            "billing", "gateway", "notifications", "recommendations", "ledger", "catalog",
            "profile", "orders", "media", "ingest", "reporting")
ROLES = ("web", "api", "db", "cache", "worker", "queue", "lb", "app", "batch", "edge")
ENVIRONMENTS = ("production", "staging", "dev")
JOBS = ("node", "kubelet", "cadvisor", "blackbox", "postgres", "redis", "nginx", "jvm", "envoy")
# (alertname, metric expression, summary template); {host} and {service} are filled in.
PROBLEMS = (
    ("HighCPUUsage", "node_cpu_seconds_total", "CPU usage above 90% on {host}"),
    ("DiskAlmostFull", "node_filesystem_avail_bytes", "Disk on {host} above 90%"),
    ("HighMemoryUsage", "node_memory_MemAvailable_bytes", "Memory on {host} above 95%"),
    ("HighLatency", "http_request_duration_seconds", "p99 latency of {service} above 2s"),
    ("ErrorRateHigh", "http_requests_total", "5xx ratio of {service} above 5%"),
    ("PodCrashLooping", "kube_pod_container_status_restarts_total",
     "A pod of {service} restarts repeatedly"),
    ("TargetDown", "up", "{host} is not scraped"),
    ("CertificateExpiring", "probe_ssl_earliest_cert_expiry", "Certificate of {service} "
     "expires in less than 7 days"),
    ("QueueBacklog", "queue_messages_ready", "Queue of {service} holds more than 10k messages"),
    ("ReplicationLag", "pg_replication_lag", "Replica {host} lags more than 30s"),
    ("OOMKilled", "kube_pod_container_status_last_terminated_reason",
     "A container of {service} was OOM-killed"),
    ("NetworkErrors", "node_network_receive_errs_total", "Receive errors on {host}"),
)
LABEL_KEYS = ("region", "zone", "cluster", "namespace", "pod", "container", "team", "tier",
              "version", "datacenter", "rack", "owner", "component", "shard", "canary",
              "build", "image", "node_pool", "tenant_group", "deployment")
WORDS = ("request", "timeout", "connection", "upstream", "retry", "backend", "pool", "thread",
         "latency", "error", "socket", "handler", "exceeded", "limit", "queue", "worker",
         "failed", "refused", "reset", "cache", "miss", "replica", "primary", "write",
         "read", "shard", "leader", "election", "heartbeat", "lease", "expired", "checksum",
         "mismatch", "payload", "rejected", "throttled", "degraded", "recovered", "partition",
         "offset", "commit", "rollback", "deadline", "context", "canceled", "goroutine",
         "stack", "trace", "at", "in", "of", "the", "while", "from", "to", "on")


def host_name(rng: random.Random, token: str) -> str:
    """A host or pod name; `token` makes it unique within a run (the caller guarantees that)."""
    return f"{rng.choice(ROLES)}-{token}"


def labels(rng: random.Random, count: int, values_per_key: int) -> dict[str, str]:
    """`count` extra labels drawn from LABEL_KEYS, each with one of `values_per_key` values."""
    keys = rng.sample(LABEL_KEYS, min(count, len(LABEL_KEYS)))
    return {key: f"{key.replace('_', '-')}-{rng.randrange(values_per_key)}" for key in keys}


def filler(rng: random.Random, length: int) -> str:
    """About `length` characters of log-like text (ASCII, no '~': that marks stamp slots)."""
    if length <= 0:
        return ""
    out: list[str] = []
    size = 0
    while size < length:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14)))
        line = f"{rng.randrange(10**6):06d} {line}"
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)[:length]
