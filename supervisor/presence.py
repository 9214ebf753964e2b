"""This farm host in the node registry (farm/nodes.py): announce it every few seconds with a
TTL, recover the notify work of hosts whose record expired, and leave on a clean stop."""

from __future__ import annotations

import logging
import os
import time

import redis

from farm import __version__, nodes
from farm.redisconn import describe

log = logging.getLogger("farm.supervisor")


class Presence:
    def __init__(self, sup):
        self.sup = sup
        self.ttl = sup.cfg.workers.heartbeat_seconds
        self._next = 0.0

    def record(self) -> dict:
        sup = self.sup
        return {"node": sup.node, "pid": os.getpid(), "state": sup.state,
                "workers": sup.scaling.running(), "workers_target": sup.scaling.target,
                "started": round(sup.started_at, 3), "version": __version__,
                "http": sup.cfg.supervisor.http,
                "ingest": sup.cfg.ingest.http if sup.gateways else None,
                "seen": round(time.time(), 3)}

    def tick(self, force: bool = False) -> None:
        """Refresh our record (a third of its TTL at most between two refreshes) and requeue
        what dead hosts' notify senders held."""
        now = time.monotonic()
        if not force and now < self._next:
            return
        self._next = now + max(1.0, self.ttl / 3)
        try:
            nodes.announce(self.sup.redis, self.sup.keys.prefix, self.record(), self.ttl)
            moved = nodes.recover_dead_senders(self.sup.redis, self.sup.keys)
        except redis.RedisError as exc:
            log.warning("node registry: %s", describe(self.sup.redis_url, exc))
            return
        if moved:
            log.warning("requeued %d notifications a dead host's sender held", moved)

    def leave(self) -> None:
        try:
            nodes.withdraw(self.sup.redis, self.sup.keys.prefix, self.sup.node)
        except redis.RedisError:
            pass  # the record expires by itself

    def live(self) -> list[dict]:
        return nodes.live_nodes(self.sup.redis, self.sup.keys.prefix)
