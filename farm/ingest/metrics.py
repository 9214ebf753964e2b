"""The gateway's Prometheus metrics (multiprocess files, merged by the supervisor's /metrics).

Label values are bounded: `provider` is one of the five providers or "-", `tenant` one of the
configured tenants, "default" (anonymous) or "-" (not authenticated), `route` one of the routes.
Label children are cached, since looking them up costs more than incrementing them.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FAST_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
EVENT_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 20000)
BYTE_BUCKETS = (1e3, 4e3, 16e3, 64e3, 256e3, 1e6, 4e6, 16e6, 64e6)
# Every reason the gateway refuses a request with (the `reason` of errors.Refused), and the
# cuts of farm/ingest/connections.py: "timeout" (also a 408 of the app) and
# "too_many_connections", which counts connections rather than requests.
REFUSAL_REASONS = ("rate_limited", "backpressure", "unauthorized", "unknown_provider",
                   "too_large", "too_deep", "too_many_items", "bad_json", "bad_body",
                   "bad_form", "bad_request", "disconnected", "unavailable", "overloaded",
                   "timeout", "too_many_connections")


class GatewayMetrics:
    def __init__(self):
        self._requests = Counter("farm_ingest_requests", "HTTP requests answered by the ingest "
                                 "gateway, by route, status, tenant and provider.",
                                 ["route", "status", "tenant", "provider"])
        self._bytes = Counter("farm_ingest_bytes", "Request body bytes accepted (202).",
                              ["tenant", "provider"])
        self._events = Counter("farm_ingest_events", "Provider events accepted (202).",
                               ["tenant", "provider"])
        self._refused = Counter("farm_ingest_refused", "Requests refused, by reason "
                                "(rate_limited, backpressure, unauthorized, too_large, "
                                "timeout, ...); too_many_connections counts connections.",
                                ["reason", "tenant", "provider"])
        self._batches = Counter("farm_ingest_batches", "Batches pushed to Redis, by lane.",
                                ["lane"])
        self.batch_events = Histogram("farm_ingest_batch_events", "Events per pushed batch.",
                                      buckets=EVENT_BUCKETS)
        self.batch_bytes = Histogram("farm_ingest_batch_bytes", "Bytes per pushed batch "
                                     "(wire format).", buckets=BYTE_BUCKETS)
        self.store_seconds = Histogram("farm_ingest_store_seconds", "Time to store: from a "
                                       "batch's first request to its LPUSH acknowledged.",
                                       buckets=FAST_BUCKETS)
        self.request_seconds = Histogram("farm_ingest_request_seconds", "From a request's "
                                         "start to its 202.", buckets=FAST_BUCKETS)
        self.backpressure = Gauge("farm_ingest_backpressure", "1 while the gateway refuses "
                                  "normal requests because of the queue backlog.",
                                  multiprocess_mode="max")
        self.store_failures = Counter("farm_ingest_store_failures", "Batches that could not "
                                      "be pushed to Redis (their requests got 503).")
        self.backpressure.set(0)
        self._cache: dict = {}
        for reason in REFUSAL_REASONS:  # a 0 series each: a fresh farm's panel is not empty
            self._child(self._refused, reason, "-", "-")

    def _child(self, metric, *labels):
        key = (id(metric), labels)
        child = self._cache.get(key)
        if child is None:
            child = self._cache[key] = metric.labels(*labels)
        return child

    def answered(self, route: str, status: int, tenant: str, provider: str) -> None:
        self._child(self._requests, route, str(status), tenant, provider).inc()

    def accepted(self, tenant: str, provider: str, size: int, events: int,
                 seconds: float) -> None:
        self._child(self._bytes, tenant, provider).inc(size)
        self._child(self._events, tenant, provider).inc(events)
        self.request_seconds.observe(seconds)

    def refused(self, reason: str, tenant: str, provider: str) -> None:
        self._child(self._refused, reason, tenant, provider).inc()

    def batch_stored(self, tenant: str, provider: str, lane: str, events: int, size: int,
                     seconds: float) -> None:
        self._child(self._batches, lane).inc()
        self.batch_events.observe(events)
        self.batch_bytes.observe(size)
        self.store_seconds.observe(seconds)
