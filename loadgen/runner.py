"""Run the producers: start them, wait while they pre-generate, start them together, show
progress, and collect what each sent.

Producers are separate processes (spawned, so nothing of the parent's state leaks in), one core
each. The parent only reads their shared counters four times a second and draws the progress
bar; Ctrl-C asks every producer to stop, and the run is reported as interrupted.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import pickle
import time
from dataclasses import dataclass, field

from loadgen.options import Plan
from loadgen.producer import main
from loadgen.producer_spec import Result, Stat
from loadgen.record import SendLog

BUILD_TIMEOUT = 600.0      # seconds producers may take to pre-generate their population
START_DELAY = 0.1          # seconds between "go" and the common start time


class RunError(Exception):
    """A producer failed; str() is one line."""


@dataclass
class Outcome:
    start: float = 0.0
    end: float = 0.0             # the last push
    payload_bytes: float = 0.0   # raw provider JSON
    wire_bytes: float = 0.0      # what went to Redis (msgpack batches) or over HTTP
    alerts: float = 0.0
    notifications: float = 0.0
    batches: float = 0.0         # batches pushed, or requests answered 202
    throttled: float = 0.0       # producer-seconds paused by the backlog guard
    shifted: float = 0.0         # seconds of schedule dropped (fell behind by more than 1 s)
    known: float = 0.0           # fingerprints the farm knew before the run (counted only
                                 # for --verify with --epoch, into Redis)
    kinds: dict = field(default_factory=dict)
    refused: dict = field(default_factory=dict)
    refusal: str | None = None
    retried: int = 0
    unknown: int = 0             # HTTP: requests sent without an answer (timeout, lost link)
    unknown_detail: str | None = None
    logs: list[SendLog] = field(default_factory=list)
    interrupted: bool = False

    @property
    def seconds(self) -> float:
        return max(1e-9, self.end - self.start)


class Progress:
    """What the runner tells its display; the CLI's rich bar implements it."""

    def started(self, plan: Plan) -> None: ...

    def update(self, elapsed: float, payload: float, alerts: float) -> None: ...

    def finished(self) -> None: ...


def run(plan: Plan, progress: Progress | None = None, before_start=None) -> Outcome:
    """Run every producer of `plan` to the end. `before_start(known)` is called once every
    producer has pre-generated, with how many of the run's fingerprints the farm already
    knows (counted only for a recorded run with a pinned epoch into Redis, else 0); it may
    raise RunError to call the run off. Raises RunError if a producer fails."""
    ctx = multiprocessing.get_context("spawn")
    go, stop = ctx.Event(), ctx.Event()
    producers = _spawn(ctx, plan, go, stop)
    outcome = Outcome()
    try:
        _wait_ready(producers)
        if before_start is not None:
            before_start(producers.total(Stat.KNOWN))
        outcome.start = _start_together(producers, go)
        outcome.interrupted = _watch(producers, plan, progress, outcome.start, stop)
    finally:
        stop.set()
        if progress is not None:
            progress.finished()
        _reap(producers.procs)
    errors = [r.error for r in producers.results.values() if r.error]
    if errors:
        raise RunError(errors[0])
    _add_counters(outcome, producers.stats)
    _add_results(outcome, producers.results)
    return outcome


@dataclass
class _Producers:
    """A run's producer processes and what the parent reads from them: each one's shared
    progress array (Stat slots) and the pipe its Result comes back on."""

    procs: list = field(default_factory=list)
    stats: list = field(default_factory=list)
    pipes: list = field(default_factory=list)
    results: dict[int, Result] = field(default_factory=dict)

    def total(self, slot: int) -> float:
        return sum(shared[slot] for shared in self.stats)

    def all_reported(self) -> bool:
        return len(self.results) >= len(self.procs)


def _spawn(ctx, plan: Plan, go, stop) -> _Producers:
    producers = _Producers()
    for spec in plan.producers:
        shared = ctx.Array("d", Stat.SIZE, lock=False)
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=main, args=(spec, shared, go, stop, send),
                           name=f"farm-loadgen-{spec.producer}", daemon=True)
        proc.start()
        send.close()   # the child holds the sending end: EOF here means it died
        producers.stats.append(shared)
        producers.pipes.append(receive)
        producers.procs.append(proc)
    return producers


def _start_together(producers: _Producers, go) -> float:
    """Give every producer one start time a little ahead, then let them go. Returns it."""
    start = time.time() + START_DELAY
    for shared in producers.stats:
        shared[Stat.START] = start
    go.set()
    return start


def _watch(producers: _Producers, plan: Plan, progress: Progress | None, start: float,
           stop) -> bool:
    """Show progress until every producer has reported; on Ctrl-C ask them all to stop and
    still collect what they sent. Returns whether the run was interrupted."""
    if progress is not None:
        progress.started(plan)
    try:
        while not producers.all_reported():
            _collect(producers, timeout=0.25)
            if progress is not None:
                progress.update(time.time() - start, producers.total(Stat.PAYLOAD),
                                producers.total(Stat.ALERTS))
            _check_alive(producers)
    except KeyboardInterrupt:
        stop.set()
        while not producers.all_reported():
            _collect(producers, timeout=0.25)
            _check_alive(producers)
        return True
    return False


def _reap(procs: list) -> None:
    for proc in procs:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()


def _add_counters(outcome: Outcome, stats: list) -> None:
    """Sum the producers' shared counters into `outcome`."""
    for shared in stats:
        outcome.payload_bytes += shared[Stat.PAYLOAD]
        outcome.wire_bytes += shared[Stat.WIRE]
        outcome.alerts += shared[Stat.ALERTS]
        outcome.notifications += shared[Stat.NOTIFICATIONS]
        outcome.batches += shared[Stat.BATCHES]
        outcome.throttled += shared[Stat.THROTTLED]
        outcome.known += shared[Stat.KNOWN]
        outcome.end = max(outcome.end, shared[Stat.LAST])
    outcome.end = max(outcome.end, outcome.start)


def _add_results(outcome: Outcome, results: dict[int, Result]) -> None:
    """Merge the producers' results into `outcome`, in producer order (the first refusal and
    the first unknown outcome are the lowest producer's)."""
    for result in sorted(results.values(), key=lambda r: r.producer):
        outcome.shifted = max(outcome.shifted, result.shifted)
        outcome.retried += result.retried
        outcome.unknown += result.unknown
        outcome.unknown_detail = outcome.unknown_detail or result.unknown_detail
        for kind, n in result.kinds.items():
            outcome.kinds[kind] = outcome.kinds.get(kind, 0) + n
        for status, n in result.refused.items():
            outcome.refused[status] = outcome.refused.get(status, 0) + n
        outcome.refusal = outcome.refusal or result.refusal
        if result.log is not None:
            outcome.logs.append(result.log)


def _wait_ready(producers: _Producers) -> None:
    deadline = time.monotonic() + BUILD_TIMEOUT
    while not all(s[Stat.STATE] >= Stat.READY for s in producers.stats):
        _collect(producers, timeout=0.1)
        failed = [r.error for r in producers.results.values() if r.error]
        if failed:
            raise RunError(failed[0])
        _check_alive(producers)
        if time.monotonic() > deadline:
            raise RunError(f"producers took more than {BUILD_TIMEOUT:.0f}s to pre-generate "
                           f"their population; lower --fingerprints")


def _collect(producers: _Producers, timeout: float) -> None:
    """Receive every result that is ready (a producer blocks until its result is read)."""
    pipes, results = producers.pipes, producers.results
    waiting = [p for i, p in enumerate(pipes) if i not in results]
    for conn in multiprocessing.connection.wait(waiting, timeout):
        index = pipes.index(conn)
        try:
            results[index] = pickle.loads(conn.recv_bytes())
        except EOFError:
            results[index] = Result(index, error="the producer process died without a word")


def _check_alive(producers: _Producers) -> None:
    for index, proc in enumerate(producers.procs):
        if (index not in producers.results and not proc.is_alive()
                and proc.exitcode not in (None, 0)):
            producers.results[index] = Result(index, error=f"producer {index} died (exit code "
                                                           f"{proc.exitcode})")
