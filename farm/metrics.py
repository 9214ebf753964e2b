"""Prometheus metrics, in prometheus_client's multiprocess mode.

Every process writes its samples to files in `<data_dir>/metrics` named by a stable identity
(`worker-3`, `indexer`, `supervisor`, `ingest-0`) rather than by pid, so a restarted worker
continues its slot's counters instead of leaving another file behind. The supervisor's /metrics
merges the files and adds gauges it reads from Redis at scrape time (supervisor/http.py).
"""

from __future__ import annotations

import os
from types import SimpleNamespace

from prometheus_client import Counter, Gauge, Histogram, values

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


def use_identity(identity: str) -> None:
    """Call before creating any metric in a process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        values.ValueClass = values.MultiProcessValue(process_identifier=lambda: identity)


def worker_metrics() -> SimpleNamespace:
    return SimpleNamespace(
        batches=Counter("farm_batches", "Batches a worker processed, by outcome.", ["outcome"]),
        alerts=Counter("farm_alerts", "Alerts by provider and dedup decision "
                       "(new, partial, full) or dead.", ["provider", "decision"]),
        batch_seconds=Histogram("farm_batch_seconds", "Worker time per batch, decode to ring.",
                                buckets=LATENCY_BUCKETS),
        ring_wait=Counter("farm_ring_full_seconds", "Time workers waited for ring space "
                          "(the indexer or the store is the bottleneck)."),
        redis_errors=Counter("farm_worker_redis_errors", "Redis errors seen by workers."),
        rules_matched=Counter("farm_correlation_matches", "Correlation rule matches: one per "
                              "alert, rule and group key it joins or opens."),
        incidents=Counter("farm_incidents", "Incident changes decided by workers: opened, "
                          "updated (alerts joined or changed), resolved.", ["event"]),
        lease_lost=Counter("farm_lease_lost", "Times a worker found its inflight list requeued "
                           "(heartbeat expired) and started over."),
        maintenance=Counter("farm_maintenance_alerts", "Alerts maintenance windows took, by "
                            "window and action (dropped, or suppressed: kept with status "
                            "suppressed or maintenance).", ["window", "action"]),
        released=Counter("farm_maintenance_released", "Alerts held in status maintenance that "
                         "a worker stored again with their own status once no window held "
                         "them (the maintenance watcher's releases)."),
    )


def indexer_metrics() -> SimpleNamespace:
    return SimpleNamespace(
        commits=Counter("farm_store_commits", "Transactions or bulk flushes committed."),
        commit_seconds=Histogram("farm_store_commit_seconds", "Time to commit one flush.",
                                 buckets=LATENCY_BUCKETS),
        records=Counter("farm_store_records", "Ring records committed (one per batch chunk)."),
        alerts=Counter("farm_store_alerts", "Alerts in committed records."),
        latency=Histogram("farm_end_to_end_seconds", "From a batch's sent_at to its commit.",
                          buckets=LATENCY_BUCKETS),
        # farm_end_to_end_seconds in three windows: before the indexer, waiting in it, committing
        taken=Histogram("farm_store_taken_seconds", "From a batch's sent_at to the indexer "
                        "taking its record from the ring (producer, queue, worker, ring).",
                        buckets=LATENCY_BUCKETS),
        waited=Histogram("farm_store_wait_seconds", "From the indexer taking a record to "
                         "handing its flush to the store (commit cadence).",
                         buckets=LATENCY_BUCKETS),
        fts_lag=Gauge("farm_fts_lag_seconds", "SQLite: age of the oldest current-state commit "
                      "not yet in the full-text index (0 when it has caught up).",
                      multiprocess_mode="max"),
        fts_pending=Gauge("farm_fts_pending", "SQLite: changed current-state rows not yet in "
                          "the full-text index.", multiprocess_mode="max"),
        errors=Counter("farm_store_errors", "Failed commit attempts (retried)."),
        rejected=Counter("farm_store_rejected", "Items the store rejected for good "
                         "(dead-lettered)."),
    )


def supervisor_metrics() -> SimpleNamespace:
    return SimpleNamespace(
        restarts=Counter("farm_process_restarts", "Processes restarted after dying.",
                         ["process"]),
        recovered=Counter("farm_batches_requeued", "Batches moved back from a dead worker's "
                          "inflight list."),
    )


def notify_metrics() -> SimpleNamespace:
    """The notify sender's; its queue depth and overflow are read from Redis at scrape time."""
    return SimpleNamespace(
        deliveries=Counter("farm_notify_deliveries", "Notify requests the receiver accepted "
                           "(2xx)."),
        delivered=Counter("farm_notify_delivered", "Notifications delivered, by kind "
                          "(alert, incident).", ["kind"]),
        failures=Counter("farm_notify_failures", "Failed notify attempts (each is retried "
                         "until [notify] retry_seconds), by HTTP status, timeout or "
                         "connection.", ["reason"]),
        dead_lettered=Counter("farm_notify_dead_lettered", "Notifications given up after "
                              "[notify] retry_seconds and moved to the dead-letter list."),
        latency=Histogram("farm_notify_delivery_seconds", "From a request's first attempt to "
                          "the receiver's 2xx, retries included.", buckets=LATENCY_BUCKETS),
    )
