"""What a run looked like second by second (`--timeline FILE`), and the spike's summary.

A sampler thread in farm-loadgen's own process reads, once a second from the start of the run
until the farm has drained: what the producers have sent (their shared counters, through the
runner's progress calls), what the farm has settled (its `alerts_received` counter, bumped by
the ack after the store's commit), its backlog (batches queued plus in flight, from /status)
and the age of the oldest queued batch (its `sent_at`, read from the queue's consuming end).
After --verify, each second also gets the p99 send->commit of the alerts sent in it.
"""

from __future__ import annotations

import json
import threading
import time
from array import array
from pathlib import Path

from farm.wire import BadBatch, decode_batch
from loadgen.profiles import Spike
from loadgen.verify import percentiles

INTERVAL = 1.0


class Sampler:
    """Samples the farm once a second on a thread; also the runner's Progress (it records
    the producers' totals and passes every call on to `shown`, the visible progress bar)."""

    def __init__(self, fetch_status, client, prefix: str, shown=None):
        self.fetch_status = fetch_status
        self.client = client
        self.queues = [f"{prefix}:q:critical", f"{prefix}:q:normal"]
        self.shown = shown
        self.sent = (0.0, 0.0)                  # payload bytes, alerts
        self.samples: list[tuple] = []          # (time, bytes, alerts, settled, backlog, age)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="timeline", daemon=True)

    # -- the runner's Progress ----------------------------------------------------------------
    def started(self, plan) -> None:
        if self.shown is not None:
            self.shown.started(plan)

    def update(self, elapsed: float, payload: float, alerts: float) -> None:
        self.sent = (payload, alerts)
        if self.shown is not None:
            self.shown.update(elapsed, payload, alerts)

    def finished(self) -> None:
        if self.shown is not None:
            self.shown.finished()

    # -- sampling -----------------------------------------------------------------------------
    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(10)
        self._sample()   # the state at the end: drained, under --verify

    def _loop(self) -> None:
        while not self.stopping.wait(INTERVAL):
            self._sample()

    def _sample(self) -> None:
        now = time.time()
        doc = self.fetch_status() or {}
        if "counters" not in doc:
            return
        backlog = doc["queues"]["critical"] + doc["queues"]["normal"] + doc["inflight"]
        self.samples.append((now, *self.sent, doc["counters"]["alerts_received"], backlog,
                             self._oldest_age(now)))

    def _oldest_age(self, now: float) -> float:
        """Seconds since the oldest queued batch was sent (0 with nothing queued)."""
        if self.client is None:
            return 0.0
        oldest = 0.0
        for queue in self.queues:
            raw = self.client.lindex(queue, -1)
            if raw is None:
                continue
            try:
                oldest = max(oldest, now - decode_batch(raw).sent_at)
            except BadBatch:
                continue
        return oldest


def rows(samples: list[tuple], start: float, latencies: array | None = None,
         sent_at: array | None = None) -> list[dict]:
    """Per-second rows from the samples: rates over each interval, the backlog at its end,
    and the p99 send->commit of the alerts sent in it (when --verify gave latencies)."""
    by_second: dict[int, array] = {}
    for value, at in zip(latencies or (), sent_at or (), strict=False):
        by_second.setdefault(int(at - start), array("d")).append(value)
    out, previous = [], None
    for sample in samples:
        at, sent_bytes, sent_alerts, settled, backlog, age = sample
        if previous is not None:
            span = max(1e-6, at - previous[0])
            p99 = percentiles(by_second.get(int(previous[0] - start), array("d")),
                              (99,))["p99"]
            out.append({"t": round(at - start, 2),
                        "sent_mb_per_second": round((sent_bytes - previous[1]) / span / 1e6, 3),
                        "sent_alerts_per_second": round((sent_alerts - previous[2]) / span, 1),
                        "committed_alerts_per_second": round((settled - previous[3]) / span, 1),
                        "backlog_batches": backlog, "backlog_age_seconds": round(age, 3),
                        "p99_seconds": round(p99, 4) if p99 is not None else None})
        previous = sample
    return out


def spike_summary(spike: Spike, planned: float, timeline: list[dict],
                  latencies: array | None, sent_at: array | None, start: float) -> dict:
    """The spike's effect: backlog peak (batches, age of the oldest), time to recover (from
    the spike's end until the backlog is back at its highest level before the spike), and
    p99 send->commit of the alerts sent during and after it. Times are seconds from the
    start; the window is the planned one (the producers may lag it at a rate they cannot
    reach)."""
    begin, end = spike.start * planned, spike.end * planned
    before = [r["backlog_batches"] for r in timeline if r["t"] <= begin]
    level = max(before, default=0)
    later = [r for r in timeline if r["t"] > begin]
    recovered = next((r["t"] for r in later if r["t"] >= end and r["backlog_batches"] <= level),
                     None)
    during, after = array("d"), array("d")
    for value, at in zip(latencies or (), sent_at or (), strict=False):
        offset = at - start
        if begin <= offset < end:
            during.append(value)
        elif offset >= end:
            after.append(value)
    p99 = {name: percentiles(values, (99,))["p99"] for name, values in
           (("during", during), ("after", after))}
    return {"factor": spike.factor, "start_seconds": round(begin, 2),
            "end_seconds": round(end, 2), "pre_spike_backlog_batches": level,
            "backlog_peak_batches": max((r["backlog_batches"] for r in later), default=0),
            "backlog_peak_age_seconds": max((r["backlog_age_seconds"] for r in later),
                                            default=0.0),
            "recovery_seconds": round(recovered - end, 2) if recovered is not None else None,
            "p99_during_seconds": round(p99["during"], 4) if p99["during"] is not None else None,
            "p99_after_seconds": round(p99["after"], 4) if p99["after"] is not None else None}


def write(path: str, start: float, timeline: list[dict], spike: dict | None,
          latencies: array | None) -> None:
    """The --timeline file: one JSON object with the run's start, its per-second rows, the
    spike's summary, and the send->commit distribution as its 1st..100th percentiles."""
    points = tuple(range(1, 101))
    spread = percentiles(latencies or array("d"), points)
    distribution = ([round(spread[f"p{p}"], 4) for p in points] if latencies else None)
    Path(path).write_text(json.dumps({"start": start, "interval_seconds": INTERVAL,
                                      "spike": spike, "seconds": timeline,
                                      "latency_percentiles_seconds": distribution}, indent=1))
