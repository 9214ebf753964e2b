"""How many workers a farm with `[workers] count = "auto"` should run: a small pure decision over
what the supervisor measures (backlog batches, the oldest batch's age, the time), so it can be
tested with real inputs and no processes.

Hysteresis: the farm must be *behind* (backlog per worker above scale_up_backlog, or the oldest
batch older than scale_up_age_seconds) for scale_up_after_seconds without a break before a worker
is added, and *idle* (empty queues) for scale_down_after_seconds before one is retired. Anything
in between (some backlog, not behind) stops both clocks, and every change restarts them, so one
decision is followed by a full period of evidence before the next.
"""

from __future__ import annotations

from dataclasses import dataclass

from farm.config import Config


@dataclass(frozen=True)
class Backlog:
    """What the queues hold now: batches waiting (all lanes) and the oldest one's age in
    seconds (None when nothing waits or its send time is unknown)."""

    batches: int
    oldest_age: float | None


@dataclass(frozen=True)
class Decision:
    """Run `target` workers from now on; direction is "up" or "down"; reason is for the log."""

    direction: str
    target: int
    reason: str


class Autoscaler:
    """Decides the worker count between low and high (inclusive)."""

    def __init__(self, low: int, high: int, up_backlog: int, up_age: float, up_after: float,
                 down_after: float, target: int | None = None):
        if not 1 <= low <= high:
            raise ValueError(f"need 1 <= min ({low}) <= max ({high})")
        self.low, self.high = low, high
        self.up_backlog, self.up_age = up_backlog, up_age
        self.up_after, self.down_after = up_after, down_after
        self.target = low if target is None else min(max(target, low), high)
        self.behind_since: float | None = None
        self.idle_since: float | None = None

    @classmethod
    def from_config(cls, cfg: Config, cpus: int) -> Autoscaler:
        """Bounds from [workers] min/max: max 0 (or more than the CPUs) means one per CPU."""
        w = cfg.workers
        high = max(w.min, min(w.max or cpus, cpus))
        return cls(w.min, high, w.scale_up_backlog, w.scale_up_age_seconds,
                   w.scale_up_after_seconds, w.scale_down_after_seconds)

    def behind(self, backlog: Backlog) -> bool:
        if backlog.batches > self.up_backlog * self.target:
            return True
        return backlog.oldest_age is not None and backlog.oldest_age > self.up_age

    def observe(self, now: float, backlog: Backlog) -> Decision | None:
        """Feed one measurement (now: monotonic seconds); returns a decision or None."""
        if self.behind(backlog):
            self.idle_since = None
            self.behind_since = now if self.behind_since is None else self.behind_since
            if now - self.behind_since >= self.up_after and self.target < self.high:
                return self._change(now, +1, f"{backlog.batches} batches waiting, oldest "
                                    f"{_age(backlog.oldest_age)}, behind for "
                                    f"{now - self.behind_since:.0f}s")
            return None
        self.behind_since = None
        if backlog.batches:
            self.idle_since = None
            return None
        self.idle_since = now if self.idle_since is None else self.idle_since
        if now - self.idle_since >= self.down_after and self.target > self.low:
            return self._change(now, -1, f"queues empty for {now - self.idle_since:.0f}s")
        return None

    def _change(self, now: float, step: int, reason: str) -> Decision:
        self.target += step
        self.behind_since = None
        self.idle_since = None
        return Decision("up" if step > 0 else "down", self.target, reason)


def _age(seconds: float | None) -> str:
    return "unknown" if seconds is None else f"{seconds:.1f}s old"
