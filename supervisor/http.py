"""The supervisor's admin endpoint: /metrics, /healthz, /livez, /status and the web console
under /ui (Starlette on uvicorn, in a thread). supervisor/health.py says what the two health
endpoints mean.

/metrics merges every process's multiprocess files and adds what only Redis knows at scrape
time: queue depths, inflight batches, dead letters and the farm's accounting counters.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading

import redis
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from farm import queue
from farm.console import console_routes
from farm.redis_keys import LANES, STAT_NAMES
from supervisor.errors import FarmError
from supervisor.fleet_metrics import FleetCollector
from supervisor.health import Health


class FarmCollector:
    """Gauges and counters read from Redis and the supervisor at scrape time."""

    def __init__(self, supervisor):
        self.supervisor = supervisor

    def collect(self):
        sup = self.supervisor
        alive = GaugeMetricFamily("farm_processes_alive", "Supervised processes alive.",
                                  labels=["role"])
        alive.add_metric(["worker"], sum(1 for c in sup.workers if c.alive))
        alive.add_metric(["indexer"], 1 if sup.indexer.alive else 0)
        if sup.gateways:
            alive.add_metric(["ingest"], sum(1 for c in sup.gateways if c.alive))
        if sup.redis_server is not None:
            alive.add_metric(["redis"], 0 if sup.redis_down else 1)
        if sup.senders:
            alive.add_metric(["notify"], sum(1 for c in sup.senders if c.alive))
        yield alive
        try:
            depths = queue.depths(sup.redis, sup.keys)
            stats = queue.read_stats(sup.redis, sup.keys)
            dead = queue.dead_letter_count(sup.redis, sup.keys)
            notify_waiting, notify_overflowed = queue.notify_depth(sup.redis, sup.keys)
        except redis.RedisError:
            return
        lanes = GaugeMetricFamily("farm_queue_depth", "Batches waiting in Redis, per lane.",
                                  labels=["lane"])
        for lane in LANES:
            lanes.add_metric([lane], depths[lane])
        yield lanes
        yield GaugeMetricFamily("farm_inflight_batches", "Batches taken by workers and not yet "
                                "committed.", value=depths["inflight"])
        yield GaugeMetricFamily("farm_dead_letters", "Entries in the dead-letter list.",
                                value=dead)
        yield GaugeMetricFamily("farm_notify_queue_depth", "Notifications waiting for the "
                                "notify sender.", value=notify_waiting)
        yield CounterMetricFamily("farm_notify_overflowed", "Notifications sent to the "
                                  "dead-letter list because [notify] max_queue was reached.",
                                  value=notify_overflowed)
        for name in STAT_NAMES:
            yield CounterMetricFamily(f"farm_stat_{name}", f"Farm accounting counter {name} "
                                      f"(kept in Redis, survives restarts).", value=stats[name])


def make_app(supervisor) -> Starlette:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, os.environ["PROMETHEUS_MULTIPROC_DIR"])
    registry.register(FarmCollector(supervisor))
    registry.register(FleetCollector(supervisor))

    async def metrics(_request):
        body = await asyncio.to_thread(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    health = Health(supervisor)

    async def healthz(_request):
        code, doc = await asyncio.to_thread(health.ready)
        return JSONResponse(doc, status_code=code)

    async def livez(_request):
        code, doc = health.live()
        return JSONResponse(doc, status_code=code)

    async def status(_request):
        return JSONResponse(await asyncio.to_thread(supervisor.status))

    routes = [Route("/metrics", metrics), Route("/healthz", healthz), Route("/livez", livez),
              Route("/status", status)]
    if supervisor.cfg.console.enabled:  # the web console (farm/console/, docs/console.md)
        routes += console_routes(supervisor.cfg, lambda: supervisor.redis)
    return Starlette(routes=routes)


class AdminServer:
    """Binds at construction (so a busy port is a clear start-up error), serves in a thread."""

    def __init__(self, supervisor):
        address = supervisor.cfg.supervisor.http
        host, _, port = address.rpartition(":")
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host.strip("[]"), int(port)))
        except OSError as exc:
            self.sock.close()
            raise FarmError(
                f"cannot serve /metrics on {address}: {exc.strerror}; set [supervisor] http "
                f"(or FARM_SUPERVISOR_HTTP) to a free address") from None
        config = uvicorn.Config(make_app(supervisor), log_level="warning", lifespan="off",
                                access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="farm-admin-http", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)
        self.sock.close()
