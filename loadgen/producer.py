"""One producer process: build its population, then follow the stream's schedule, pushing
batches into Redis (or posting webhooks, loadgen/http_producer.py) until the run ends.

Loop, top-down:  check backlog -> wait for the schedule -> generate what is due -> push batches.

The parent (loadgen/runner.py) sees progress through a shared array of doubles (`Stat`) and
gets the result (counts and the send log) through a pipe at the end. Every exit path sends a
result; a failure is one line in `error`.
"""

from __future__ import annotations

import math
import pickle
import signal
import time
from dataclasses import replace

import redis

from farm.redis_keys import CLUSTER_SHARDS, LANES, Keys
from farm.redisconn import connect, is_cluster_url
from loadgen.batches import Batcher
from loadgen.http_producer import HttpProducer
from loadgen.pacing import Pacer
from loadgen.population import build_population, build_storm_group
from loadgen.producer_spec import ProducerSpec, Result, Stat
from loadgen.record import SendLog
from loadgen.stream import Stream

BURST_SENDS = 256           # sends generated between two looks at the clock
AHEAD = 0.002               # generate this far ahead of the schedule (seconds)
BACKLOG_CHECK = 0.1         # seconds between two looks at the farm's queue depth


def prepare(spec: ProducerSpec) -> Stream:
    """The producer's population and stream (the pre-generation step, before timing)."""
    population = build_population(spec.population, spec.producer, spec.producers)
    storm = (build_storm_group(spec.population, spec.producers)
             if spec.stream.profile.name == "storm" else None)
    stream = Stream(spec.stream, population, spec.population.mix, spec.producer, storm)
    stream.arm_incident_storm(spec.population, spec.producer, spec.producers)  # epoch pinned
    return stream


def main(spec: ProducerSpec, stats, go, stop, conn) -> None:
    """Process entry point. Ctrl-C goes to the parent, which sets `stop`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    result = Result(spec.producer)
    try:
        stream = prepare(spec)
        log = SendLog(spec.producer, spec.run_id) if spec.record else None
        if spec.http is not None:
            runner = HttpProducer(spec, stream, stats, log, result)
        else:
            runner = RedisProducer(spec, stream, stats, log)
            # Only a pinned epoch makes this run's first sends byte-identical to an earlier
            # run's (the CLI's before_start check); otherwise the count is not worth an EXISTS
            # per fingerprint.
            if spec.record and spec.stream.epoch is not None:
                stats[Stat.KNOWN] = runner.known_fingerprints()
        stats[Stat.STATE] = Stat.READY
        while not go.wait(0.2):
            if stop.is_set():
                break
        if not stop.is_set():
            stats[Stat.STATE] = Stat.RUNNING
            start = stats[Stat.START]
            if stream.spec.epoch is None:
                stream.spec = replace(stream.spec, epoch=round(start, 3))
            stream.arm_incident_storm(spec.population, spec.producer, spec.producers)
            if log is not None and stream.incidents is not None:
                log.storm_tag = stream.incidents.tag
            runner.run(start, stop)
        result.kinds = dict(stream.kinds)
        result.shifted = runner.pacer.shifted
        result.log = log
        stats[Stat.STATE] = Stat.DONE
    except Exception as exc:  # one line for the parent; the run stops
        result.error = _one_line(exc)
        stats[Stat.STATE] = Stat.FAILED
    conn.send_bytes(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    conn.close()


def _one_line(exc: Exception) -> str:
    if isinstance(exc, redis.RedisError):
        return f"Redis failed during the run: {exc}"
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


class RedisProducer:
    def __init__(self, spec: ProducerSpec, stream: Stream, stats, log: SendLog | None):
        self.spec = spec
        self.stream = stream
        self.stats = stats
        self.redis = connect(spec.redis_url)
        self.keys = keys = producer_keys(spec)
        # A batch goes to the shards in turn (each producer starts at its own).
        self.queues = {lane: [keys.queue(lane, s) for s in keys.all_shards()] for lane in LANES}
        self.turn = spec.producer
        self.batcher = Batcher(spec.run_id, spec.producer, spec.tenant, spec.batch_events,
                               spec.batch_bytes, spec.batch_wait, log)
        self.pacer = Pacer(0.0)
        self.done_amount = 0.0
        self.throttled_since: float | None = None
        self.next_backlog_check = 0.0

    def known_fingerprints(self) -> int:
        """How many of this producer's fingerprints the farm already holds a content hash for
        (`<prefix>:dedup:<tenant>:<fingerprint>`): an earlier run with the same seed."""
        keys = self.keys
        groups = [g for groups in self.stream.order.values() for g in groups]
        if self.stream.incidents is not None:
            groups += self.stream.incidents.groups.values()
        known = 0
        for at in range(0, len(groups), 1000):
            pipe = self.redis.pipeline(transaction=False)
            for group in groups[at:at + 1000]:
                for fingerprint in group.fingerprints:
                    pipe.exists(keys.dedup(self.spec.tenant, fingerprint))
            known += sum(pipe.execute())
        return known

    def run(self, start: float, stop) -> None:
        spec, stream, batcher = self.spec, self.stream, self.batcher
        self.pacer = pacer = Pacer(start, paced=spec.stream.profile.multiplier is not None)
        end = start + spec.duration if spec.duration else math.inf
        total = spec.total if spec.total else math.inf
        by_bytes = spec.stream.unit == "bytes"
        while True:
            now = time.time()
            if now >= end or self.done_amount >= total or stop.is_set():
                break
            if self.backlogged(now):
                time.sleep(0.05)
                continue
            wait = pacer.delay(stream.t, now)
            if wait > 0:
                self.push_due()
                time.sleep(min(wait, 0.02))
                continue
            horizon = now - start - pacer.shifted + AHEAD
            done = self.done_amount
            for _ in range(BURST_SENDS):
                group = stream.next()
                batcher.add(group)
                done += group.size if by_bytes else group.alerts
                if (pacer.paced and stream.t > horizon) or done >= total:
                    break
            self.done_amount = done
            self.push_due()
        batcher.close_all()
        self.push(batcher.take())
        if self.throttled_since is not None:
            self.stats[Stat.THROTTLED] += time.time() - self.throttled_since

    def push_due(self) -> None:
        self.batcher.close_due(time.monotonic())
        ready = self.batcher.take()
        if ready:
            self.push(ready)

    def push(self, ready: list) -> None:
        """LPUSH ready batches in one round trip, each stamped with the time it leaves."""
        if not ready:
            return
        stats = self.stats
        sent_at = time.time()
        pipe = self.redis.pipeline(transaction=False)
        closed = [self.batcher.seal(batch, sent_at) for batch in ready]
        for batch in closed:
            shards = self.queues[batch.lane]
            self.turn += 1
            pipe.lpush(shards[self.turn % len(shards)], batch.data)
        pipe.execute()
        for batch in closed:
            stats[Stat.PAYLOAD] += batch.payload_bytes
            stats[Stat.ALERTS] += batch.alerts
            stats[Stat.NOTIFICATIONS] += batch.notifications
            stats[Stat.WIRE] += len(batch.data)
        stats[Stat.BATCHES] += len(closed)
        stats[Stat.LAST] = time.time()

    def backlogged(self, now: float) -> bool:
        """True while the farm's queues hold more than max_backlog bytes (estimated from this
        producer's mean batch size): pushing more would only grow Redis."""
        if now < self.next_backlog_check:
            return self.throttled_since is not None
        self.next_backlog_check = now + BACKLOG_CHECK
        batches = self.stats[Stat.BATCHES]
        if not batches:
            return False
        pipe = self.redis.pipeline(transaction=False)
        for shards in self.queues.values():
            for queue in shards:
                pipe.llen(queue)
        queued = sum(pipe.execute())
        over = queued * (self.stats[Stat.WIRE] / batches) > self.spec.max_backlog
        if over and self.throttled_since is None:
            self.push_due()
            self.throttled_since = now
        elif not over and self.throttled_since is not None:
            self.stats[Stat.THROTTLED] += now - self.throttled_since
            self.throttled_since = None
        return over


def producer_keys(spec: ProducerSpec) -> Keys:
    """The farm's keys as the producer's Redis URL and `[redis] shards` make them."""
    cluster = is_cluster_url(spec.redis_url)
    return Keys(spec.prefix, shards=spec.shards or (CLUSTER_SHARDS if cluster else 1),
                cluster=cluster)
