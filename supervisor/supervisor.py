"""The supervisor: starts the indexer and N pinned workers, restarts what dies, requeues a dead
worker's batches, drains on SIGTERM/SIGINT, and serves /metrics, /healthz and /status.

Loop, top-down (gunicorn's arbiter is the model):
    start -> [handle_signals -> reap -> check_hung -> spawn_due -> recover_orphans] -> drain
Signal handlers only record the signal; the loop acts on it.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import time
from collections import deque
from dataclasses import dataclass, field

import psutil
import redis

from farm import indexer as indexer_proc
from farm import metrics, queue, ring
from farm import worker as worker_proc
from farm.keys import Keys
from farm.redis_server import RedisServer
from farm.redisconn import connect, describe
from supervisor.pidfile import PidFile

log = logging.getLogger("farm.supervisor")

BOOT_ERROR = 3


class FarmError(Exception):
    """The farm cannot start or must stop; str() says why and what to do."""


@dataclass
class Child:
    """One supervised process slot (a worker or the indexer)."""

    name: str
    cpu: int | None = None
    proc: multiprocessing.Process | None = None
    restarts: int = 0
    deaths: deque = field(default_factory=deque)
    start_at: float = 0.0  # monotonic time the next start is due (backoff)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None


class Supervisor:
    def __init__(self, cfg, workers: int, ingest: bool = True):
        self.cfg = cfg
        self.n_workers = workers
        self.n_ingest = cfg.ingest.processes if ingest else 0
        self.keys = Keys(cfg.redis.prefix)
        self.node = cfg.node_id
        self.ctx = multiprocessing.get_context("spawn")
        self.pidfile = PidFile(cfg.data_dir / "farm.pid")
        self.redis_server: RedisServer | None = None
        self.redis_url = cfg.redis.url
        self.redis: redis.Redis | None = None
        self.http = None
        self.signals: list[int] = []
        self.state = "starting"
        self.started_at = time.time()
        self.workers: list[Child] = []
        self.indexer = Child("indexer")
        self.gateways: list[Child] = []
        self.rings: list[ring.RingHandle] = []
        self.ring_views: list[ring.Ring] = []
        self.control = None
        self.metrics = None
        self._next_orphan_scan = 0.0

    # -- start ---------------------------------------------------------------------------
    def start(self) -> None:
        self.cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.pidfile.acquire()
        self._prepare_metrics_dir()
        metrics.use_identity("supervisor")
        self.metrics = metrics.supervisor_metrics()
        self._start_redis()
        self._check_store()
        from supervisor.http import AdminServer

        self.http = AdminServer(self)
        self.http.start()
        moved = self._requeue_own_leftovers()
        if moved:
            log.info("requeued %d batches left in flight by a previous run", moved)
        self._create_rings()
        self.spawn_indexer()
        cpus = sorted(psutil.Process().cpu_affinity()) if self.cfg.workers.pin else []
        for slot in range(self.n_workers):
            cpu = cpus[slot % len(cpus)] if cpus else None
            self.workers.append(Child(f"worker-{slot}", cpu=cpu))
            self.spawn_worker(slot)
        for index in range(self.n_ingest):
            self.gateways.append(Child(f"ingest-{index}"))
            self.spawn_gateway(index)
        for child in self._children():
            self.metrics.restarts.labels(child.name)  # a 0 series from the start
        self.state = "running"
        log.info("farm running: %d workers, store %s, redis %s, http://%s", self.n_workers,
                 self.cfg.store.kind, self.redis_url, self.cfg.supervisor.http)
        if self.n_ingest:
            log.info("ingest gateway: %d processes on http://%s", self.n_ingest,
                     self.cfg.ingest.http)

    def _prepare_metrics_dir(self) -> None:
        path = self.cfg.data_dir / "metrics"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)

    def _start_redis(self) -> None:
        if not self.redis_url:
            self.redis_server = RedisServer(self.cfg.data_dir / "redis")
            self.redis_url = self.redis_server.start()
        self.redis = connect(self.redis_url)

    def _check_store(self) -> None:
        """Open the store once here, so that a bad path or URL stops start-up with one line."""
        from farm.sinks import writer_for

        try:
            writer_for(self.cfg, check=True).close()
        except Exception as exc:
            where = self.cfg.sqlite_path if self.cfg.store.kind == "sqlite" else self.cfg.store.url
            raise FarmError(f"cannot open the {self.cfg.store.kind} store at {where}: "
                            f"{exc}") from None

    def _requeue_own_leftovers(self) -> int:
        """Inflight lists of this node's worker ids belong to a previous run of this farm
        (we hold the pid file), so they are requeued without waiting for heartbeats."""
        moved = 0
        prefix = self.keys.inflight(f"{self.node}.")
        for key in self.redis.scan_iter(match=prefix + "*", count=500):
            worker_id = self.keys.worker_of_inflight(key.decode())
            moved += queue.recover(self.redis, self.keys, worker_id, force=True)
        return moved

    def _create_rings(self) -> None:
        doorbell = self.ctx.Semaphore(0)
        size = self.cfg.workers.ring_mb * 1024 * 1024
        self.rings = [ring.create(self.ctx, size, doorbell) for _ in range(self.n_workers)]
        self.ring_views = [ring.Ring(handle) for handle in self.rings]

    def worker_id(self, slot: int) -> str:
        return f"{self.node}.{slot}"

    # -- spawning ------------------------------------------------------------------------
    def spawn_indexer(self) -> None:
        parent_end, child_end = self.ctx.Pipe()
        self.control = parent_end
        handles = dict(enumerate(self.rings))
        proc = self.ctx.Process(target=indexer_proc.main, name="farm-indexer",
                                args=(self.cfg, handles, child_end, self.rings[0].doorbell
                                      if self.rings else self.ctx.Semaphore(0), self.redis_url))
        proc.start()
        child_end.close()
        self.indexer.proc = proc

    def spawn_gateway(self, index: int) -> None:
        from farm.ingest import process as ingest_proc

        proc = self.ctx.Process(target=ingest_proc.main, name=f"farm-ingest-{index}",
                                args=(self.cfg, index, self.redis_url))
        proc.start()
        self.gateways[index].proc = proc

    def spawn_worker(self, slot: int) -> None:
        child = self.workers[slot]
        proc = self.ctx.Process(target=worker_proc.main, name=f"farm-worker-{slot}",
                                args=(self.cfg, slot, self.worker_id(slot), self.rings[slot],
                                      self.redis_url, child.cpu))
        proc.start()
        child.proc = proc

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the process exit code."""
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda signum, _frame: self.signals.append(signum))
        try:
            self.start()
            try:
                while not self.signals:
                    self.wait_for_events(0.5)
                    self.reap()
                    self.check_hung()
                    self.spawn_due()
                    self.recover_orphans()
            except FarmError as exc:
                log.error("%s", exc)
                self.drain()
                return 1
            log.info("received %s: draining", signal.Signals(self.signals[0]).name)
            return self.drain()
        finally:
            self.cleanup()

    def wait_for_events(self, timeout: float) -> None:
        sentinels = [c.proc.sentinel for c in self._children() if c.alive]
        if sentinels:
            multiprocessing.connection.wait(sentinels, timeout)
        else:
            time.sleep(timeout)

    def _children(self) -> list[Child]:
        return [self.indexer, *self.workers, *self.gateways]

    def reap(self) -> None:
        """Handle every process that died: requeue, reset its ring, schedule a restart."""
        if self.indexer.proc is not None and not self.indexer.alive:
            self._indexer_died()
        for slot, child in enumerate(self.workers):
            if child.proc is not None and not child.alive:
                self._worker_died(slot, child)
        for child in self.gateways:
            if child.proc is not None and not child.alive:
                # A gateway answers 202 only once a batch is in Redis: nothing to recover.
                code = child.proc.exitcode
                child.proc = None
                log.error("%s died (%s)", child.name, _exit_reason(code))
                self._schedule_restart(child, code)

    def _worker_died(self, slot: int, child: Child) -> None:
        code = child.proc.exitcode
        child.proc = None
        moved = self._requeue(slot)
        log.error("worker-%d died (%s); requeued %d in-flight batches", slot,
                  _exit_reason(code), moved)
        self._reset_ring(slot)
        self._schedule_restart(child, code)

    def _indexer_died(self) -> None:
        code = self.indexer.proc.exitcode
        self.indexer.proc = None
        log.error("indexer died (%s); restarting the pipeline: workers stop, their batches are "
                  "requeued, rings are emptied", _exit_reason(code))
        for slot, child in enumerate(self.workers):
            if child.proc is not None:
                if child.alive:
                    child.proc.kill()
                    child.proc.join()
                else:
                    log.error("worker-%d died too (%s)", slot, _exit_reason(child.proc.exitcode))
                    self._schedule_restart(child, child.proc.exitcode)
            child.proc = None
            child.start_at = 0.0  # workers start as soon as the indexer is back
            self._requeue(slot)
        for view in self.ring_views:
            view.reset()
        self._schedule_restart(self.indexer, code)

    def _requeue(self, slot: int) -> int:
        for _attempt in range(60):
            try:
                moved = queue.recover(self.redis, self.keys, self.worker_id(slot), force=True)
                self.metrics.recovered.inc(moved)
                return moved
            except redis.RedisError as exc:
                log.warning("%s", describe(self.redis_url, exc))
                time.sleep(1)
        raise FarmError(f"cannot requeue worker-{slot}'s batches: Redis is unreachable")

    def _reset_ring(self, slot: int) -> None:
        """Ask the indexer to empty the dead worker's ring, and wait for it."""
        deadline = time.monotonic() + 30
        try:
            if self.indexer.alive:
                self.control.send(("reset", slot))
            while self.indexer.alive and time.monotonic() < deadline:
                if self.control.poll(0.1) and self.control.recv() == ("reset", slot):
                    return
        except (EOFError, OSError):
            pass  # the indexer died too: its restart resets every ring
        if self.indexer.alive:
            log.error("indexer did not reset ring %d within 30s; killing it", slot)
            self.indexer.proc.kill()
            self.indexer.proc.join()

    def _schedule_restart(self, child: Child, code: int | None) -> None:
        if self.signals:
            return
        if code == BOOT_ERROR:
            raise FarmError(f"{child.name} could not start (see the error above); stopping")
        now = time.monotonic()
        window = self.cfg.supervisor.restart_window_seconds
        child.deaths.append(now)
        while child.deaths and child.deaths[0] < now - window:
            child.deaths.popleft()
        if len(child.deaths) >= self.cfg.supervisor.restart_limit:
            raise FarmError(f"{child.name} died {len(child.deaths)} times within {window}s "
                            f"(last: {_exit_reason(code)}); it is crash-looping, so the farm "
                            f"stops. Read the errors above, fix the cause and start again.")
        child.restarts += 1
        self.metrics.restarts.labels(child.name).inc()
        child.start_at = now + min(0.5 * 2 ** (len(child.deaths) - 1), 10.0)

    def spawn_due(self) -> None:
        now = time.monotonic()
        for index, child in enumerate(self.gateways):
            if child.proc is None and now >= child.start_at:
                log.info("starting %s", child.name)
                self.spawn_gateway(index)
        if self.indexer.proc is None:
            if now >= self.indexer.start_at:
                log.info("starting indexer")
                self.spawn_indexer()
            return  # workers wait for the indexer
        for slot, child in enumerate(self.workers):
            if child.proc is None and now >= child.start_at:
                log.info("starting worker-%d", slot)
                self.spawn_worker(slot)

    def check_hung(self) -> None:
        """A worker that has not touched its ring for heartbeat_seconds is hung: kill it."""
        limit = self.cfg.workers.heartbeat_seconds
        now = time.time()
        for slot, child in enumerate(self.workers):
            beat = self.ring_views[slot].beat
            if child.alive and beat and now - beat > limit:
                log.error("worker-%d has shown no sign of life for %.0fs; killing it", slot,
                          now - beat)
                child.proc.kill()

    def recover_orphans(self) -> None:
        """Requeue inflight batches of workers on any host whose heartbeat expired."""
        now = time.monotonic()
        if now < self._next_orphan_scan:
            return
        self._next_orphan_scan = now + max(1.0, self.cfg.workers.heartbeat_seconds / 3)
        try:
            moved = queue.recover_orphans(self.redis, self.keys)
        except redis.RedisError as exc:
            log.warning("%s", describe(self.redis_url, exc))
            return
        if moved:
            self.metrics.recovered.inc(moved)
            log.warning("requeued %d batches of workers whose heartbeat expired", moved)

    # -- stop ----------------------------------------------------------------------------
    def drain(self) -> int:
        """Workers finish what they took and ack it; then the indexer flushes and exits."""
        self.state = "draining"
        deadline = time.monotonic() + self.cfg.supervisor.grace_seconds
        gateways = [c for c in self.gateways if c.alive]
        for child in gateways:  # first stop new work from coming in
            child.proc.terminate()
        clean = self._wait_all(gateways, deadline)
        workers = [c for c in self.workers if c.alive]
        for child in workers:
            child.proc.terminate()
        clean = self._wait_all(workers, deadline) and clean
        if self.indexer.alive:
            self.indexer.proc.terminate()
            clean = self._wait_all([self.indexer], deadline) and clean
        if not clean:
            log.error("drain did not finish within %ds; what was in flight stays in Redis and "
                      "is requeued at the next start", self.cfg.supervisor.grace_seconds)
            return 1
        log.info("drained; all in-flight work committed and acked")
        return 0

    def _wait_all(self, children: list[Child], deadline: float) -> bool:
        clean = True
        for child in children:
            child.proc.join(max(0.0, deadline - time.monotonic()))
            if child.proc.is_alive():
                log.error("%s did not finish draining in time; killing it", child.name)
                child.proc.kill()
                child.proc.join()
                clean = False
            elif child.proc.exitcode != 0:
                log.error("%s ended its drain with %s", child.name,
                          _exit_reason(child.proc.exitcode))
                clean = False
        return clean

    def cleanup(self) -> None:
        self.state = "stopped"
        for child in self._children():
            if child.alive:
                child.proc.kill()
                child.proc.join()
        if self.http is not None:
            self.http.stop()
        for view in self.ring_views:
            view.close()
        for handle in self.rings:
            ring.destroy(handle)
        if self.redis_server is not None:
            self.redis_server.stop()
        self.pidfile.release()

    # -- status --------------------------------------------------------------------------
    def status(self) -> dict:
        """The JSON document served at /status and printed by `farm status`."""
        doc = {
            "node": self.node,
            "pid": os.getpid(),
            "state": self.state,
            "uptime_seconds": round(time.time() - self.started_at, 1),
            "redis": {"url": self.redis_url, "embedded": self.redis_server is not None},
            "store": {"kind": self.cfg.store.kind,
                      "where": str(self.cfg.sqlite_path) if self.cfg.store.kind == "sqlite"
                      else self.cfg.store.url},
            "workers": [{"id": self.worker_id(slot), "pid": c.pid, "cpu": c.cpu,
                         "alive": c.alive, "restarts": c.restarts}
                        for slot, c in enumerate(self.workers)],
            "indexer": {"pid": self.indexer.pid, "alive": self.indexer.alive,
                        "restarts": self.indexer.restarts},
            "ingest": {"http": self.cfg.ingest.http if self.gateways else None,
                       "processes": [{"id": c.name, "pid": c.pid, "alive": c.alive,
                                      "restarts": c.restarts} for c in self.gateways]},
        }
        try:
            depths = queue.depths(self.redis, self.keys)
            doc["queues"] = {lane: depths[lane] for lane in ("critical", "normal")}
            doc["inflight"] = depths["inflight"]
            doc["dead_letters"] = self.redis.llen(self.keys.dlq)
            doc["counters"] = queue.read_stats(self.redis, self.keys)
        except redis.RedisError as exc:
            doc["error"] = describe(self.redis_url, exc)
        return doc


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "unknown exit"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def serve(cfg, workers: int, ingest: bool = True) -> int:
    """Run a farm in the foreground; returns the exit code. Raises FarmError for start-up
    problems that the CLI prints as one line."""
    return Supervisor(cfg, workers, ingest).run()

