"""The worker process: take batches from Redis, run the pipeline, hand records to the indexer,
ack what the indexer has committed. Single-threaded; one per CPU, pinned.

Loop, top-down:  ack_committed -> take -> process -> hand_over  (until told to stop, then drain);
a batch whose correlation call is still running is handed over after the next one is processed.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass

import msgpack
import redis

from farm import metrics
from farm.config import Config
from farm.dedup import DECISION_NAMES
from farm.lifeline import BOOT_ERROR, Lifeline
from farm.log import setup_logging
from farm.pipeline import MeanwhileFailed, Outcome, Pipeline
from farm.queue import ShardAck, WorkQueue
from farm.redis_keys import keys_for
from farm.redisconn import (
    RedisUnavailable,
    Rider,
    Riders,
    connect,
    describe,
    unlink_later,
    wait_replicas,
)
from farm.ring import Ring
from farm.rules.ruleset import RuleError
from farm.units import parse_duration

log = logging.getLogger("farm.worker")

IDLE_BLOCK_SECONDS = 0.25
ACK_EVERY_SECONDS = 1.0


@dataclass
class Pending:
    """A batch handed to the ring and not yet committed."""

    shard: int
    last_seq: int
    counts: dict[str, int]
    dead_letters: list[bytes]
    memo_keys: list[str]
    notifications: list[bytes]


class Worker:
    """One worker process's loop over its inflight list, its ring and its lease.

    Takes batches from the queues (critical first) into `<prefix>:inflight:<worker id>`, runs
    each through the Pipeline, puts the records into its ring in the order the batches were
    taken, and acks a batch (trims it off the inflight list, adds its counters, pushes its dead
    letters, in one atomic call) only once the indexer's committed seq has passed the batch's
    last record. A bad batch never stops the loop: it becomes a dead letter. A Redis error or a
    lost lease makes it requeue what it holds and start over; nothing is counted twice, since
    counting happens on ack. `stop()` drains: it takes nothing new and returns from `run()` once
    everything it took is committed and acked.
    """

    def __init__(self, cfg: Config, slot: int, worker_id: str, ring: Ring, redis_url: str,
                 lifeline: Lifeline | None = None):
        self.cfg = cfg
        self.lifeline = lifeline
        self.slot = slot
        self.worker_id = worker_id
        self.ring = ring
        self.redis_url = redis_url
        # No ping: the supervisor checked Redis at start; a later outage is retried in the loop.
        self.redis = connect(redis_url, check=False)
        self.keys = keys_for(cfg, redis_url)
        self.max_age = parse_duration(cfg.redis.max_batch_age) if cfg.redis.max_batch_age else 0
        self.queue = WorkQueue(self.redis, self.keys, worker_id, cfg.workers.heartbeat_seconds,
                               notify_cap=cfg.notify.max_queue)
        self.pipeline = Pipeline(cfg, self.redis, self.keys, max_record_bytes=ring.max_record)
        self.metrics = metrics.worker_metrics()
        for event in INCIDENT_EVENTS:
            self.metrics.incidents.labels(event)  # a series at 0 from the start
        self.pending: deque[Pending] = deque()
        # (shard, batch) taken into that shard's inflight list, not yet handed over
        self.taken: deque[tuple[int, bytes]] = deque()
        # (shard, outcome, seconds spent) of the batch handed over last, while its correlation
        # call runs in Redis (Pipeline.process ahead): the worker prepares the next batch first.
        self.unfinished: tuple[int, Outcome, float] | None = None
        # Acks, the next take and (on a cluster) memo UNLINKs wait here for the next batch's
        # dedup requests, which reach every master anyway (farm/redisconn.py, Riders).
        self.riders = Riders.of(self.redis)
        self.stopping = False
        self.resync = True  # the first thing the loop does: requeue leftovers, take a lease
        self._last_ack = 0.0

    def run(self) -> None:
        log.info("%s ready on cpu %s", self.worker_id, _cpus())
        if self.lifeline is not None:
            self.lifeline.ready()
        while not (self.stopping and not self.pending and not self.taken
                   and self.unfinished is None and not self.riders.waiting):
            self.touch()
            try:
                if self.resync:
                    self.start_over()
                self.ack_committed()
                if self.taken:
                    # Batches must be handed over in the order they entered the inflight list:
                    # acks trim the oldest first.
                    take = self.take_along()
                    self.hand_over(*self.taken[0])
                    self.taken.popleft()
                    self.riders.discard(take)  # it rides or it does not go: take() will
                    self.riders.flush(self.redis, only_due=True)  # those the batch left behind
                elif self.unfinished is not None:
                    self.deliver_unfinished()  # no batch to prepare meanwhile
                elif self.stopping:
                    self.riders.flush(self.redis)
                    time.sleep(0.01)
                else:
                    self.take()
            except redis.RedisError as exc:
                # A command may have run without its reply reaching us (an LMOVE or an ack):
                # our view of the inflight list can no longer be trusted, so start over from it.
                self.metrics.redis_errors.inc()
                log.warning("%s; retrying in 1s", describe(self.redis_url, exc))
                self.resync = True
                if self.stopping:
                    break  # a drain cannot ack without Redis; the next start redelivers
                self._sleep(1.0)
        self.ring.close()
        if self.resync:
            log.error("%s stopped without finishing its drain: Redis was unreachable, so its "
                      "in-flight batches stay in Redis and are redelivered at the next start",
                      self.worker_id)
            sys.exit(1)
        try:
            self.queue.release()
        except redis.RedisError as exc:
            log.warning("%s could not drop its heartbeat (%s); it expires by itself",
                        self.worker_id, exc)
        log.info("%s drained and stopped", self.worker_id)

    def take(self) -> None:
        """Take what the queues have; what waits for a ride goes along (an ack that is due
        costs no request of its own), and anything left (bound for another node) is sent
        before the worker blocks, so that no ack waits on an idle queue."""
        block = 0.02 if self.pending else IDLE_BLOCK_SECONDS
        got = self.queue.take(block)
        if not got:
            self.riders.flush(self.redis)
        self.taken.extend(got)

    def take_along(self) -> list[Rider]:
        """When the batch about to be handed over is the last one taken: the next shard's
        LMOVEs (critical first), to ride the batch's dedup requests, which reach every master;
        what they take joins `taken` in the order it entered the inflight list. Returns those
        riders (to forget if no request went their way). Not while the queues look idle (the
        last take found them empty): the LMOVEs would most likely find nothing, and take()
        probes them anyway before it blocks."""
        if self.stopping or len(self.taken) > 1 or self.queue.idle:
            return []
        riders = self.queue.take_riders(lambda shard, raw: self.taken.append((shard, raw)))
        for rider in riders:
            self.riders.add(rider)
        return riders

    def touch(self) -> None:
        """Show the supervisor we are alive, and end at once if it is not."""
        self.ring.touch()
        if self.lifeline is not None:
            self.lifeline.exit_if_orphaned()

    def hand_over(self, shard: int, raw: bytes) -> None:
        """Run a batch through the pipeline and put its records into the ring, after those of
        the batch before it (whose correlation call ran meanwhile)."""
        started = time.perf_counter()
        finishing: list[float] = []  # the batch before's time, not this batch's
        try:
            # The batch before is finished while this one's dedup call runs in Redis.
            outcome = (self.expired(raw) if self.max_age and self.is_stale(raw)
                       else self.pipeline.process(  # it splits big records
                           raw, ahead=True,
                           meanwhile=lambda: finishing.append(self.deliver_unfinished())))
        except MeanwhileFailed as failed:
            raise failed.__cause__ from None  # the batch before's, as deliver_unfinished raised it
        except redis.RedisError:
            raise
        except Exception as exc:  # a poison batch must not crash-loop the farm
            log.exception("%s: batch dead-lettered", self.worker_id)
            outcome = self.pipeline.dead_batch(raw, f"{type(exc).__name__}: {exc}", "pipeline")
        spent = time.perf_counter() - started - sum(finishing)
        self.deliver_unfinished()
        if outcome.unfinished is not None:
            self.unfinished = (shard, outcome, spent)
        else:
            self.deliver(shard, outcome, spent)

    def deliver_unfinished(self) -> float:
        """Finish the batch whose correlation call was left running, and deliver it; returns
        the seconds that took (0 when there was none)."""
        if self.unfinished is None:
            return 0.0
        (shard, outcome, spent), self.unfinished = self.unfinished, None
        started = time.perf_counter()
        outcome = self.pipeline.finish(outcome)
        self.deliver(shard, outcome, spent + time.perf_counter() - started)
        return time.perf_counter() - started

    def deliver(self, shard: int, outcome: Outcome, seconds: float) -> None:
        """Put a batch's records into the ring; it is acked once the indexer commits them."""
        last_seq = 0
        for record in outcome.records:
            last_seq = self.ring.put(record, wait=self._ring_full)
        memo_keys = [key for m in outcome.memo_ids
                     for key in self.keys.memo_keys(m, outcome.tenant)]
        self.pending.append(Pending(shard, last_seq, outcome.counts, outcome.dead_letters,
                                    memo_keys, outcome.notifications))
        self.metrics.batch_seconds.observe(seconds)
        self.metrics.batches.labels("dead" if outcome.counts.get("batches_dead") else "ok").inc()
        for letter, n in outcome.decisions.items():
            if n:
                self.metrics.alerts.labels(outcome.provider, DECISION_NAMES[letter]).inc(n)
        correlation = outcome.correlation
        if correlation.matched:
            self.metrics.rules_matched.inc(sum(correlation.matched.values()))
        for event in INCIDENT_EVENTS:
            if getattr(correlation, event):
                self.metrics.incidents.labels(event).inc(getattr(correlation, event))
        for (window, action), n in outcome.maintenance.items():
            self.metrics.maintenance.labels(window, action).inc(n)
        if outcome.released:
            self.metrics.released.inc(outcome.released)
        if outcome.counts.get("alerts_dead"):
            self.metrics.alerts.labels(outcome.provider, "dead").inc(outcome.counts["alerts_dead"])

    def is_stale(self, raw: bytes) -> bool:
        """Whether the batch was sent more than `[redis] max_batch_age` ago (an unreadable
        batch is not: the pipeline dead-letters it with its own reason)."""
        sent_at = _peek_sent_at(raw)
        return sent_at is not None and time.time() - sent_at > self.max_age

    def expired(self, raw: bytes):
        """A stale batch goes to the dead-letter list as `expired`, each event counted as one
        expired alert (the account's unit for a batch that is not read)."""
        outcome = self.pipeline.dead_batch(raw, "expired", "take")
        counts = outcome.counts
        counts["alerts_expired"] = counts.pop("alerts_dead")
        counts["batches_expired"] = counts.pop("batches_dead")
        return outcome

    def ack_committed(self) -> None:
        """Ack every pending batch the indexer has committed, one atomic call per shard they
        came from, riding the next request (see ack_later); refresh every shard's lease at
        least every second."""
        committed = self.ring.committed
        done = []
        while self.pending and self.pending[0].last_seq <= committed:
            done.append(self.pending.popleft())
        now = time.monotonic()
        refresh = now - self._last_ack >= ACK_EVERY_SECONDS
        if not done and not refresh:
            return
        if done and not self.replicated():
            self.pending.extendleft(reversed(done))  # acked later, once replicas confirm
            self._last_ack = now
            return
        acks: dict[int, ShardAck] = {}
        for p in done:
            one = acks.setdefault(p.shard, ShardAck())
            one.trim += 1
            for name, n in p.counts.items():
                one.counts[name] = one.counts.get(name, 0) + n
            one.dead_letters += p.dead_letters
            one.notifications += p.notifications
            if not self.keys.cluster:  # one slot only on a cluster: dropped after the ack
                one.memo_keys += p.memo_keys
        if refresh or len(acks) == len(self.queue.shards):
            self._last_ack = now
        self.ack_later(acks, done, refresh)

    def ack_later(self, acks: dict[int, ShardAck], done: list[Pending], refresh: bool) -> None:
        """Each shard's ack rides the next request to its node (the next batch's dedup, which
        reaches every master, or the next take), or goes on its own after the batch
        (Worker.run). On a single Redis the ack script deletes the batches' memos itself; on a
        cluster, once a shard's ack is confirmed, its batches' memos are dropped the same way.
        A memo outlives a lost ack (its batch is redelivered and replays it); after a crash
        between the ack and its UNLINK it expires by itself (a day)."""
        memos: dict[int, list[str]] = {}
        if self.keys.cluster:
            for p in done:
                memos.setdefault(p.shard, []).extend(p.memo_keys)

        def answer(shard: int):
            def acked(ok) -> None:
                if ok != 1:
                    self.lease_lost()
                elif memos.get(shard):
                    unlink_later(self.riders, memos[shard])
            return acked

        for shard, (script, keys, args) in self.queue.ack_calls(acks, refresh_all=refresh):
            self.riders.add(Rider(script, keys, args, answer(shard)))

    def lease_lost(self) -> None:
        """Our heartbeat expired and a supervisor requeued (some of) our inflight lists."""
        if self.resync:
            return  # already starting over (another shard's ack said so)
        self.metrics.lease_lost.inc()
        log.warning("%s lost its lease (heartbeat expired); requeueing its batches and "
                    "starting over", self.worker_id)
        self.resync = True  # at the top of the loop, never in the middle of a hand-over

    def replicated(self) -> bool:
        """With [redis] wait_replicas: whether that many replicas confirmed every write so far
        (Redis WAIT), so an ack never gets ahead of what a failover would keep."""
        wanted = self.cfg.redis.wait_replicas
        if not wanted:
            return True
        confirmed = wait_replicas(self.redis, wanted, self.cfg.redis.wait_timeout_ms)
        if confirmed >= wanted:
            return True
        self.metrics.redis_errors.inc()
        log.warning("%s: only %d of %d replicas confirmed within %d ms ([redis] wait_replicas); "
                    "the ack waits and is retried", self.worker_id, confirmed, wanted,
                    self.cfg.redis.wait_timeout_ms)
        return False

    def start_over(self) -> None:
        """Requeue everything in our inflight list and forget what we hold. Whatever we had
        handed to the ring is committed anyway and will be processed again: writes are
        idempotent, decisions replay from their memo, and counting happens only on ack."""
        self.pending.clear()
        self.taken.clear()
        self.unfinished = None
        self.riders.drop_urgent()  # acks under the old lease: its batches are redelivered
        self.queue.claim()
        self.resync = False

    def _ring_full(self) -> None:
        self.metrics.ring_wait.inc(0.1)
        self.touch()
        now = time.monotonic()
        if now - self._last_ack >= ACK_EVERY_SECONDS and not self.resync:
            try:
                self.ack_committed()
                self.riders.flush(self.redis)  # no request of ours is coming while we wait
            except redis.RedisError as exc:
                log.warning("%s", describe(self.redis_url, exc))
                self.resync = True

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.touch()
            time.sleep(0.1)

    def stop(self, *_args) -> None:
        self.stopping = True


INCIDENT_EVENTS = ("opened", "updated", "resolved")


def _peek_sent_at(raw: bytes) -> float | None:
    """The envelope's `sent_at`, read without unpacking the events that follow it (farm's
    producers write it first); None when the envelope is unreadable or has none."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(raw)
    try:
        for _ in range(unpacker.read_map_header()):
            if unpacker.unpack() == "sent_at":
                value = unpacker.unpack()
                return float(value) if isinstance(value, (int, float)) else None
            unpacker.skip()
    except Exception:  # msgpack raises several unrelated types for garbage
        return None
    return None


def _cpus() -> str:
    import psutil

    return ",".join(map(str, psutil.Process().cpu_affinity()))


def main(cfg: Config, slot: int, worker_id: str, ring_handle, redis_url: str, cpu: int | None,
         lifeline: Lifeline) -> None:
    """Entry point of a spawned worker process."""
    lifeline.bind()
    setup_logging(cfg.farm.log_level, f"worker-{slot}")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when we stop
    metrics.use_identity(f"worker-{slot}")
    if cpu is not None:
        import psutil

        psutil.Process().cpu_affinity([cpu])
    try:
        worker = Worker(cfg, slot, worker_id, Ring(ring_handle), redis_url, lifeline)
    except RedisUnavailable as exc:  # only a malformed URL gets here
        log.error("%s", exc)
        sys.exit(BOOT_ERROR)
    except RuleError as exc:
        for problem in exc.problems:
            log.error("rules: %s", problem)
        sys.exit(BOOT_ERROR)
    signal.signal(signal.SIGTERM, worker.stop)
    worker.run()
