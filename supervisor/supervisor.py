"""The supervisor: starts the indexer and N pinned workers, restarts what dies, requeues a dead
worker's batches, drains on SIGTERM/SIGINT, and serves /metrics, /healthz and /status.

Loop, top-down (gunicorn's arbiter is the model):
    start -> [handle_signals -> reap -> watch_redis -> handle_reports -> check_hung -> spawn_due
              -> recover_orphans] -> drain
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
from multiprocessing import resource_tracker

import psutil
import redis

from farm import indexer as indexer_proc
from farm import metrics, nodes, queue, ring
from farm import worker as worker_proc
from farm.autoscale import Autoscaler
from farm.config import Config
from farm.ingest import process as ingest_proc
from farm.lifeline import ReadyBoard
from farm.maintenance.watcher import MaintenanceWatcher
from farm.redis_keys import LANES, keys_for
from farm.redis_server import RedisServer, RedisServerError, embedded_dir
from farm.redisconn import connect, describe
from farm.sinks import writer_for
from farm.sweep import KeyspaceSweep
from supervisor import leftovers
from supervisor.children import Child, RestartPolicy, became_ready, exit_reason
from supervisor.errors import FarmError
from supervisor.http import AdminServer
from supervisor.pidfile import PidFile
from supervisor.presence import Presence
from supervisor.scaling import WorkerScaling

log = logging.getLogger("farm.supervisor")

# How often the keyspace sweep (farm/sweep.py) makes a pass, a few SCAN pages per loop turn.
KEYSPACE_SWEEP_SECONDS = 600.0

__all__ = ["FarmError", "Supervisor", "serve"]


class Supervisor:
    """One farm on one host: its processes, its embedded Redis (if any), its admin endpoint.

    `run()` blocks until SIGTERM/SIGINT, drains, and returns the exit code; start-up problems
    raise FarmError (or the Redis/pid-file errors) with a one-line reason."""

    def __init__(self, cfg: Config, workers: int | str, ingest: bool = True):
        self.cfg = cfg
        scaler = None
        if workers == "auto":  # [workers] count = "auto": slots for max, min running at first
            scaler = Autoscaler.from_config(cfg, len(psutil.Process().cpu_affinity()))
            workers = scaler.high
        self.n_workers = workers
        self.n_ingest = cfg.ingest.processes if ingest else 0
        self.keys = keys_for(cfg)
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
        n_senders = 1 if cfg.notify.url else 0  # the outbound webhook (farm/notify/sender.py)
        self.board = ReadyBoard(1 + workers + self.n_ingest + n_senders)
        self.indexer = Child("indexer", board_slot=0)
        self.workers: list[Child] = []
        self.gateways: list[Child] = []
        self.senders = [Child("notify", board_slot=1 + workers + self.n_ingest)
                        for _ in range(n_senders)]
        self.redis_slot = Child("redis", board_slot=-1)  # restart bookkeeping of embedded Redis
        self.redis_down: str | None = None
        self.store_problem: str | None = None
        self.policy = RestartPolicy(cfg.supervisor.restart_limit,
                                    cfg.supervisor.restart_window_seconds,
                                    cfg.supervisor.restart_backoff_max_seconds)
        self.record = leftovers.RunRecord(cfg.data_dir / "farm.run")
        self.loop_turned_at = time.monotonic()
        self.rings: list[ring.RingHandle] = []
        self.ring_views: list[ring.Ring] = []
        self.control = None
        self.metrics = None
        self._next_orphan_scan = 0.0
        self.scaling = WorkerScaling(self, scaler, workers)
        self.presence = Presence(self)
        self.watcher: MaintenanceWatcher | None = None

    # -- start ---------------------------------------------------------------------------
    def start(self) -> None:
        self.cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.pidfile.acquire()
        self._clean_after_predecessor()
        self.record.shared_memory(self.board.name)
        self._prepare_metrics_dir()
        metrics.use_identity("supervisor")
        self.metrics = metrics.supervisor_metrics()
        self._start_redis()
        self.presence.tick(force=True)
        self._check_store()
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
            self.workers.append(Child(f"worker-{slot}", board_slot=1 + slot, cpu=cpu))
            if self.scaling.wanted(slot):
                self.spawn_worker(slot)
        for index in range(self.n_ingest):
            self.gateways.append(Child(f"ingest-{index}", board_slot=1 + self.n_workers + index))
            self.spawn_gateway(index)
        for child in self.senders:
            self.spawn_sender(child)
        for child in [*self._children(), self.redis_slot]:
            self.metrics.restarts.labels(child.name)  # a 0 series from the start
        if self.cfg.maintenance.release_seconds:
            self.watcher = MaintenanceWatcher(self.cfg, self.redis, self.keys, self.redis_url,
                                              self.node, self.cfg.maintenance.release_seconds)
            self.watcher.start()
        self.state = "running"
        log.info("farm running: %d workers%s, store %s, redis %s, http://%s",
                 self.scaling.target, f" (auto, up to {self.n_workers})" if self.scaling.auto
                 else "", self.cfg.store.kind, self.redis_url, self.cfg.supervisor.http)
        if self.n_ingest:
            log.info("ingest gateway: %d processes on http://%s", self.n_ingest,
                     self.cfg.ingest.http)

    def _clean_after_predecessor(self) -> None:
        """We hold the data folder's lock, so the farm that last wrote its run record here is
        dead; kill what it left running and free what it left in shared memory."""
        try:
            summary = leftovers.clean(self.record.path)
        except OSError as exc:
            raise FarmError(f"cannot clean up after the previous farm in {self.cfg.data_dir}: "
                            f"{exc}; stop those processes, then start again") from None
        if summary:
            log.warning("%s", summary)

    def _prepare_metrics_dir(self) -> None:
        path = self.cfg.data_dir / "metrics"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)

    def _start_redis(self) -> None:
        if not self.redis_url:
            self.redis_server = RedisServer(embedded_dir(self.cfg.data_dir))
            self.redis_url = self.redis_server.start()
            self.redis_slot.spawned_at = time.time()
            self.record.process("redis-server", self.redis_server.pid)
        self.redis = connect(self.redis_url)
        self.sweep = KeyspaceSweep(self.redis, self.keys, KEYSPACE_SWEEP_SECONDS)

    def _check_store(self) -> None:
        """Open the store once here, so that a bad path or URL stops start-up with one line."""
        try:
            writer_for(self.cfg, check=True).close()
        except Exception as exc:
            where = self.cfg.sqlite_path if self.cfg.store.kind == "sqlite" else self.cfg.store.url
            raise FarmError(f"cannot open the {self.cfg.store.kind} store at {where}: "
                            f"{exc}") from None

    def _requeue_own_leftovers(self) -> int:
        """Inflight lists of this node's worker ids belong to a previous run of this farm
        (we hold the pid file), so they are requeued without waiting for heartbeats. A whole
        keyspace sweep first registers the lists no registry names (a farm from before them)."""
        self._report_swept(self.sweep.run_pass())
        return sum(queue.recover(self.redis, self.keys, worker_id, force=True, shards=[shard])
                   for worker_id, shard in queue.inflight_lists(self.redis, self.keys,
                                                                f"{self.node}.*"))

    def _create_rings(self) -> None:
        doorbell = self.ctx.Semaphore(0)
        size = self.cfg.workers.ring_mb * 1024 * 1024
        self.rings = [ring.create(self.ctx, size, doorbell) for _ in range(self.n_workers)]
        self.ring_views = [ring.Ring(handle) for handle in self.rings]
        names = [doorbell._semlock.name]
        for handle in self.rings:
            names += [handle.shm_name, handle.free._semlock.name, handle.filled._semlock.name]
        self.record.shared_memory(*names)
        # multiprocessing's tracker of those entries outlives us by design; a successor that
        # finds it still running (a child of ours kept its pipe open) ends it.
        resource_tracker.ensure_running()
        tracker = resource_tracker._resource_tracker._pid
        if tracker:
            self.record.process("resource-tracker", tracker)

    def worker_id(self, slot: int) -> str:
        return f"{self.node}.{slot}"

    # -- spawning ------------------------------------------------------------------------
    def spawn_indexer(self) -> None:
        parent_end, child_end = self.ctx.Pipe()
        self.control = parent_end
        handles = dict(enumerate(self.rings))
        doorbell = self.rings[0].doorbell if self.rings else self.ctx.Semaphore(0)
        self._start(self.indexer, indexer_proc.main, "farm-indexer",
                    (self.cfg, handles, child_end, doorbell, self.redis_url))
        child_end.close()

    def spawn_gateway(self, index: int) -> None:
        self._start(self.gateways[index], ingest_proc.main, f"farm-ingest-{index}",
                    (self.cfg, index, self.redis_url))

    def spawn_sender(self, child: Child) -> None:
        from farm.notify import sender as sender_proc

        self._start(child, sender_proc.main, "farm-notify", (self.cfg, self.redis_url))

    def spawn_worker(self, slot: int) -> None:
        child = self.workers[slot]
        self._start(child, worker_proc.main, f"farm-worker-{slot}",
                    (self.cfg, slot, self.worker_id(slot), self.rings[slot], self.redis_url,
                     child.cpu))

    def _start(self, child: Child, target, name: str, args: tuple) -> None:
        """Start child's process; its lifeline (last argument) ties it to us."""
        child.spawned_at = time.time()
        proc = self.ctx.Process(target=target, name=name,
                                args=(*args, self.board.lifeline(child.board_slot)))
        proc.start()
        child.proc = proc
        self.record.process(child.name, proc.pid)

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the process exit code."""
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda signum, _frame: self.signals.append(signum))
        try:
            self.start()
            try:
                while not self.signals:
                    self.loop_turned_at = time.monotonic()
                    self.wait_for_events(0.5)
                    self.reap()
                    self.watch_redis()
                    self.handle_reports()
                    self.check_hung()
                    self.spawn_due()
                    self.recover_orphans()
                    self.presence.tick()
                    self.scaling.tick()
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
        return [self.indexer, *self.workers, *self.gateways, *self.senders]

    def reap(self) -> None:
        """Handle every process that died: requeue, reset its ring, schedule a restart."""
        if self.indexer.proc is not None and not self.indexer.alive:
            self._indexer_died()
        for slot, child in enumerate(self.workers):
            if child.proc is not None and not child.alive:
                self._worker_died(slot, child)
        for child in [*self.gateways, *self.senders]:
            if child.proc is not None and not child.alive:
                # A gateway answers 202 only once a batch is in Redis, and a sender resends
                # its own inflight list when it starts again: nothing to recover.
                code = child.proc.exitcode
                child.proc = None
                log.error("%s died (%s)", child.name, exit_reason(code))
                self._schedule_restart(child, code)

    def _worker_died(self, slot: int, child: Child) -> None:
        code = child.proc.exitcode
        child.proc = None
        moved = self._requeue(slot)
        if self.scaling.reaped(slot):
            log.info("worker-%d retired (%s); requeued %s in-flight batches", slot,
                     exit_reason(code), "its" if moved is None else moved)
            self._reset_ring(slot)
            return
        log.error("worker-%d died (%s); requeued %s in-flight batches", slot,
                  exit_reason(code), "its" if moved is None else moved)
        self._reset_ring(slot)
        self._schedule_restart(child, code)

    def _indexer_died(self) -> None:
        code = self.indexer.proc.exitcode
        self.indexer.proc = None
        log.error("indexer died (%s); restarting the pipeline: workers stop, their batches are "
                  "requeued, rings are emptied", exit_reason(code))
        for slot, child in enumerate(self.workers):
            if child.proc is not None:
                if child.alive:
                    child.proc.kill()
                    child.proc.join()
                else:
                    log.error("worker-%d died too (%s)", slot, exit_reason(child.proc.exitcode))
                    self._schedule_restart(child, child.proc.exitcode)
            child.proc = None
            self.scaling.retiring.discard(slot)  # a retiring worker killed here is retired
            child.start_at = 0.0  # workers start as soon as the indexer is back
            self._requeue(slot)
        for view in self.ring_views:
            view.reset()
        self._schedule_restart(self.indexer, code)

    def _requeue(self, slot: int) -> int | None:
        """Give a dead worker's batches to the others now. If Redis cannot be reached, they
        wait: the worker's successor (same id) requeues its inflight list before anything else,
        and a dead host's are requeued by any live supervisor once its heartbeat expires."""
        try:
            moved = queue.recover(self.redis, self.keys, self.worker_id(slot), force=True)
        except redis.RedisError as exc:
            log.warning("%s", describe(self.redis_url, exc))
            return None
        self.metrics.recovered.inc(moved)
        return moved

    def _reset_ring(self, slot: int) -> None:
        """Ask the indexer to empty the dead worker's ring, and wait for it."""
        deadline = time.monotonic() + 30
        try:
            if self.indexer.alive:
                self.control.send(("reset", slot))
            while self.indexer.alive and time.monotonic() < deadline:
                if self.control.poll(0.1) and self._report(self.control.recv()) == ("reset", slot):
                    return
        except (EOFError, OSError):
            pass  # the indexer died too: its restart resets every ring
        if self.indexer.alive:
            log.error("indexer did not reset ring %d within 30s; killing it", slot)
            self.indexer.proc.kill()
            self.indexer.proc.join()

    def _schedule_restart(self, child: Child, code: int | None,
                          ready_since: float | None = None) -> None:
        if self.signals:
            return
        if ready_since is None:
            ready_since = self.board.ready_since(child.board_slot)
        delay = self.policy.after_death(child, code, ready_since)
        self.metrics.restarts.labels(child.name).inc()
        child.start_at = time.monotonic() + delay
        log.error("restarting %s in %.1fs (restart %d; it died %d times in the last %ds)",
                  child.name, delay, child.restarts, len(child.deaths),
                  self.cfg.supervisor.restart_window_seconds)

    def watch_redis(self) -> None:
        """The embedded Redis is supervised like the other children: when it dies it is
        restarted on the same append-only file, with the same backoff; clients reconnect."""
        server = self.redis_server
        if server is None or self.signals:
            return
        if server.proc is not None:
            code = server.exit_code()
            if code is None:
                return
            server.proc = None
            self.redis_down = f"the embedded Redis died ({exit_reason(code)})"
            log.error("%s; it is restarted on the same append-only file", self.redis_down)
            # It had been serving since it started, so this death is never a boot failure.
            self._schedule_restart(self.redis_slot, code, self.redis_slot.spawned_at)
        if time.monotonic() < self.redis_slot.start_at:
            return
        try:
            server.start()
        except RedisServerError as exc:
            self.redis_down = f"the embedded Redis cannot be restarted: {exc}"
            log.error("%s", self.redis_down)
            self._schedule_restart(self.redis_slot, None, ready_since=0)
            return
        self.redis_slot.spawned_at = time.time()
        self.record.process("redis-server", server.pid)
        self.redis_down = None
        log.info("embedded Redis restarted (pid %d)", server.pid)

    def handle_reports(self) -> None:
        """What the indexer tells us between restarts: the store's health."""
        try:
            while self.indexer.alive and self.control.poll():
                self._report(self.control.recv())
        except (EOFError, OSError):
            pass  # it died: reap() handles that

    def _report(self, message: tuple) -> tuple:
        if message[0] == "store":
            if message[1] != self.store_problem:
                self.store_problem = message[1]
                log.log(logging.ERROR if message[1] else logging.INFO, "store %s",
                        message[1] or "is writable again")
        return message

    def spawn_due(self) -> None:
        now = time.monotonic()
        for index, child in enumerate(self.gateways):
            if child.proc is None and now >= child.start_at:
                log.info("starting %s", child.name)
                self.spawn_gateway(index)
        for child in self.senders:
            if child.proc is None and now >= child.start_at:
                log.info("starting %s", child.name)
                self.spawn_sender(child)
        if self.redis_server is not None and self.redis_server.proc is None:
            return  # workers and the indexer wait for Redis
        if self.indexer.proc is None:
            if now >= self.indexer.start_at:
                log.info("starting indexer")
                self.spawn_indexer()
            return  # workers wait for the indexer
        for slot, child in enumerate(self.workers):
            if child.proc is None and now >= child.start_at and self.scaling.wanted(slot):
                log.info("starting worker-%d", slot)
                self.spawn_worker(slot)

    def check_hung(self) -> None:
        """A worker that has not touched its ring for heartbeat_seconds is hung: kill it. The
        ring's beat may be its dead predecessor's: a new worker's time starts at its spawn."""
        limit = self.cfg.workers.heartbeat_seconds
        now = time.time()
        for slot, child in enumerate(self.workers):
            beat = max(self.ring_views[slot].beat, child.spawned_at)
            if child.alive and now - beat > limit:
                log.error("worker-%d has shown no sign of life for %.0fs; killing it", slot,
                          now - beat)
                child.proc.kill()

    def recover_orphans(self) -> None:
        """Requeue inflight batches of workers on any host whose heartbeat expired."""
        self.sweep_keyspace()
        now = time.monotonic()
        if now < self._next_orphan_scan:
            return
        self._next_orphan_scan = now + max(1.0, self.cfg.workers.heartbeat_seconds / 3)
        try:
            live = nodes.live_names(self.redis, self.keys.prefix)
            moved = queue.recover_orphans(self.redis, self.keys, live)
        except redis.RedisError as exc:
            log.warning("%s", describe(self.redis_url, exc))
            return
        if moved:
            self.metrics.recovered.inc(moved)
            log.warning("requeued %d batches of workers whose heartbeat expired", moved)

    def sweep_keyspace(self) -> None:
        """A few pages of the keyspace sweep (farm/sweep.py): what it finds outside the
        registries is registered, and then recovered like any other list."""
        try:
            self._report_swept(self.sweep.step())
        except redis.RedisError as exc:
            log.warning("keyspace sweep: %s", describe(self.redis_url, exc))

    @staticmethod
    def _report_swept(found: tuple[int, int] | None) -> None:
        if found and any(found):
            log.warning("the keyspace sweep found %d worker and %d notify inflight lists that no "
                        "registry named; they are recovered like any other", *found)

    # -- stop ----------------------------------------------------------------------------
    def drain(self) -> int:
        """Workers finish what they took and ack it; then the indexer flushes and exits."""
        self.state = "draining"
        started = time.monotonic()
        grace = self.cfg.supervisor.grace_seconds
        deadline = started + grace
        failed: list[str] = []
        gateways = [c for c in self.gateways if c.alive]
        for child in gateways:  # first stop new work from coming in
            child.proc.terminate()
        failed += self._wait_all(gateways, deadline)
        workers = [c for c in self.workers if c.alive]
        for child in workers:
            child.proc.terminate()
        failed += self._wait_all(workers, deadline)
        senders = [c for c in self.senders if c.alive]  # after the workers' last acks
        for child in senders:
            child.proc.terminate()
        failed += self._wait_all(senders, deadline)
        if self.indexer.alive:
            self.indexer.proc.terminate()
            failed += self._wait_all([self.indexer], deadline)
        took = time.monotonic() - started
        if failed:
            log.error("drain incomplete after %.1fs (grace %ds): %s; what was in flight stays "
                      "in Redis and is requeued at the next start", took, grace,
                      "; ".join(failed))
            return 1
        log.info("drained in %.1fs; all in-flight work committed and acked", took)
        return 0

    def _wait_all(self, children: list[Child], deadline: float) -> list[str]:
        """Wait for each to exit; returns what went wrong, one phrase per process."""
        failed = []
        for child in children:
            child.proc.join(max(0.0, deadline - time.monotonic()))
            if child.proc.is_alive():
                child.proc.kill()
                child.proc.join()
                failed.append(f"{child.name} had not finished when the grace period ended, "
                              f"so it was killed")
            elif child.proc.exitcode == -signal.SIGTERM and not self.is_ready(child):
                pass  # stopped while still starting: it had taken nothing yet
            elif child.proc.exitcode != 0:
                failed.append(f"{child.name} stopped with {exit_reason(child.proc.exitcode)} "
                              f"(its log says why)")
        return failed

    def is_ready(self, child: Child) -> bool:
        """Whether child's current process has said it is ready (farm/lifeline.py)."""
        return became_ready(child, self.board.ready_since(child.board_slot))

    def cleanup(self) -> None:
        self.state = "stopped"
        if self.watcher is not None:
            self.watcher.stop()
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
        self.board.destroy()
        if self.pidfile.held and self.redis is not None:
            self.presence.leave()  # before an embedded Redis stops
        if self.redis_server is not None:
            self.redis_server.stop()
        if self.pidfile.held:  # the record is ours only if the data folder was
            self.record.remove()
        self.pidfile.release()

    # -- status --------------------------------------------------------------------------
    def status(self) -> dict:
        """The JSON document served at /status and printed by `farm status`."""
        doc = {
            "node": self.node,
            "pid": os.getpid(),
            "state": self.state,
            "uptime_seconds": round(time.time() - self.started_at, 1),
            "redis": {"url": self.redis_url, "embedded": self.redis_server is not None,
                      "pid": self.redis_server.pid if self.redis_server else None,
                      "restarts": self.redis_slot.restarts, "down": self.redis_down},
            "store": {"kind": self.cfg.store.kind,
                      "where": str(self.cfg.sqlite_path) if self.cfg.store.kind == "sqlite"
                      else self.cfg.store.url, "problem": self.store_problem},
            "workers": [{"id": self.worker_id(slot), "pid": c.pid, "cpu": c.cpu,
                         "alive": c.alive, "ready": c.alive and self.is_ready(c),
                         "restarts": c.restarts}
                        for slot, c in enumerate(self.workers)
                        if self.scaling.wanted(slot) or c.alive],
            "scaling": self.scaling.status(),
            "indexer": {"pid": self.indexer.pid, "alive": self.indexer.alive,
                        "ready": self.indexer.alive and self.is_ready(self.indexer),
                        "restarts": self.indexer.restarts},
            "ingest": {"http": self.cfg.ingest.http if self.gateways else None,
                       "processes": [{"id": c.name, "pid": c.pid, "alive": c.alive,
                                      "ready": c.alive and self.is_ready(c),
                                      "restarts": c.restarts} for c in self.gateways]},
            "notify": {"url": self.cfg.notify.url or None,
                       "processes": [{"id": c.name, "pid": c.pid, "alive": c.alive,
                                      "ready": c.alive and self.is_ready(c),
                                      "restarts": c.restarts} for c in self.senders]},
            "maintenance": self.watcher.status() if self.watcher else {"release_seconds": 0},
        }
        try:
            depths = queue.depths(self.redis, self.keys)
            doc["queues"] = {lane: depths[lane] for lane in LANES}
            doc["inflight"] = depths["inflight"]
            doc["dead_letters"] = queue.dead_letter_count(self.redis, self.keys)
            doc["counters"] = queue.read_stats(self.redis, self.keys)
            waiting, overflowed = queue.notify_depth(self.redis, self.keys)
            doc["notify"].update(queue=waiting, overflowed=overflowed)
            doc["nodes"] = self.presence.live()
        except redis.RedisError as exc:
            doc["error"] = describe(self.redis_url, exc)
        return doc


def serve(cfg: Config, workers: int | str, ingest: bool = True) -> int:
    """Run a farm in the foreground; returns the exit code. Raises FarmError for start-up
    problems that the CLI prints as one line."""
    return Supervisor(cfg, workers, ingest).run()

