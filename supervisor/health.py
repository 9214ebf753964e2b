"""What the supervisor's /healthz and /livez answer, for every dependency.

- `/livez` is liveness: 200 while the supervisor's own loop keeps turning. Nothing outside the
  supervisor (Redis, the store, a child) makes it fail, so a liveness probe never restarts a
  farm that is waiting out an outage it will recover from by itself.
- `/healthz` is readiness: 200 when this farm can take alerts in and get them into the store,
  503 with the reasons when it cannot: the farm is starting or draining; Redis does not answer
  (embedded or external); the store refuses writes (as the indexer last reported); the indexer,
  every worker, or every gateway process is down. A process that is down while others of its
  kind run (a worker being restarted) leaves the farm ready but `degraded`, listed in the body.
"""

from __future__ import annotations

import time

import redis

from farm.redisconn import RedisUnavailable, connect, is_cluster_url

LOOP_STALL_SECONDS = 30.0
PING_TIMEOUT_SECONDS = 1.0


class Health:
    def __init__(self, supervisor):
        self.sup = supervisor
        self._client: redis.Redis | None = None

    def live(self) -> tuple[int, dict]:
        stalled = time.monotonic() - self.sup.loop_turned_at
        if stalled > LOOP_STALL_SECONDS:
            return 503, {"status": "stalled",
                         "problems": [f"the supervisor loop has not turned for {stalled:.0f}s"]}
        return 200, {"status": "alive"}

    def ready(self) -> tuple[int, dict]:
        """Blocking (one Redis PING): call it off the event loop."""
        sup = self.sup
        problems = []
        if sup.state != "running":
            problems.append(f"farm is {sup.state}")
        redis_problem = sup.redis_down or self._ping()
        if redis_problem:
            problems.append(redis_problem)
        if sup.store_problem:
            problems.append(f"store: {sup.store_problem}")
        if not sup.indexer.alive:
            problems.append("indexer is down")
        degraded = []
        # Worker slots above an autoscaled farm's target are meant to be empty.
        workers = [c for slot, c in enumerate(sup.workers) if sup.scaling.wanted(slot)]
        for kind, children in (("worker", workers), ("gateway", sup.gateways)):
            down = [c.name for c in children if not c.alive]
            if children and len(down) == len(children):
                problems.append(f"every {kind} process is down")
            else:
                degraded += down
        doc = {"status": "unhealthy" if problems else "degraded" if degraded else "ok"}
        if problems:
            doc["problems"] = problems
        if degraded:
            doc["down"] = degraded
        return (503 if problems else 200), doc

    def _ping(self) -> str | None:
        try:
            if self._client is None:
                self._client = (connect(self.sup.redis_url, check=False)
                                if is_cluster_url(self.sup.redis_url) else redis.Redis.from_url(
                                    self.sup.redis_url, socket_timeout=PING_TIMEOUT_SECONDS,
                                    socket_connect_timeout=PING_TIMEOUT_SECONDS))
            self._client.ping()
        except RedisUnavailable as exc:
            return str(exc)
        except redis.RedisError as exc:
            return f"Redis does not answer: {exc}"
        return None
