"""Scrape-time metrics for running many farm hosts and for autoscalers (KEDA, HPA): the worker
count and the autoscaler's decisions, live nodes, and per lane the backlog's batches, bytes and
oldest batch's age (farm/backlog.py). docs/scaling.md shows how to scale on them."""

from __future__ import annotations

import time

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from farm import backlog, nodes


class FleetCollector:
    def __init__(self, supervisor):
        self.supervisor = supervisor

    def collect(self):
        sup = self.supervisor
        scaling = sup.scaling
        yield GaugeMetricFamily("farm_workers_target", "Workers this farm host means to run "
                                "(the autoscaler's target, or the fixed count).",
                                value=scaling.target)
        yield GaugeMetricFamily("farm_workers_running", "Worker processes alive on this host "
                                "(retiring ones included until they have drained).",
                                value=scaling.running())
        decisions = CounterMetricFamily("farm_autoscale_decisions", "Worker count changes made "
                                        "by [workers] count = \"auto\", by direction.",
                                        labels=["direction"])
        for direction, n in scaling.decisions.items():
            decisions.add_metric([direction], n)
        yield decisions
        try:
            lanes = backlog.read_lanes(sup.redis, sup.keys)
            live = nodes.live_nodes(sup.redis, sup.keys.prefix)
        except redis.RedisError:
            return
        yield from backlog_families(lanes, time.time())
        yield GaugeMetricFamily("farm_nodes_live", "Farm hosts in the node registry (sharing "
                                "this Redis and prefix).", value=len(live))


def backlog_families(lanes: dict[str, backlog.QueueSignal], now: float):
    """The three per-lane backlog gauges; an empty lane's age is 0."""
    batches = GaugeMetricFamily("farm_backlog_batches", "Batches waiting in Redis, per lane.",
                                labels=["lane"])
    size = GaugeMetricFamily("farm_backlog_bytes", "Estimated bytes of the batches waiting, per "
                             "lane (Redis MEMORY USAGE, sampled).", labels=["lane"])
    age = GaugeMetricFamily("farm_backlog_oldest_age_seconds", "Seconds since the oldest "
                            "waiting batch was sent (its sent_at), per lane; 0 when empty.",
                            labels=["lane"])
    for lane, signal in lanes.items():
        batches.add_metric([lane], signal.batches)
        size.add_metric([lane], signal.bytes)
        age.add_metric([lane], signal.oldest_age(now) or 0.0)
    yield from (batches, size, age)
