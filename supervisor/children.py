"""Supervised process slots, and the policy that decides what happens when one dies.

The policy never turns an outside kill into an outage. A process that became ready and then
died (SIGKILL from an operator or the OOM killer, a lost store, a bug hit by one input) is
restarted, always, after a wait that doubles with each death in the restart window and is
capped. Only a process that cannot start stops the farm: one that exits with BOOT_ERROR (bad
config or rules: restarting would fail the same way), or one that keeps exiting by itself
before it ever becomes ready (restart_limit times within the window).
"""

from __future__ import annotations

import signal
import time
from collections import deque
from dataclasses import dataclass, field

from farm.lifeline import BOOT_ERROR
from supervisor.errors import FarmError

FIRST_BACKOFF_SECONDS = 0.5


@dataclass
class Child:
    """One supervised process slot (a worker, the indexer or a gateway)."""

    name: str
    board_slot: int        # where it reports readiness (farm/lifeline.py)
    cpu: int | None = None
    proc: object = None    # multiprocessing.Process while started
    restarts: int = 0
    spawned_at: float = 0.0   # unix time of its last start
    start_at: float = 0.0     # monotonic time its next start is due
    deaths: deque = field(default_factory=deque)        # monotonic times, within the window
    boot_deaths: deque = field(default_factory=deque)   # those that came before readiness

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None


class RestartPolicy:
    def __init__(self, limit: int, window: float, backoff_max: float):
        self.limit = limit
        self.window = window
        self.backoff_max = backoff_max

    def after_death(self, child: Child, code: int | None, ready_since: float) -> float:
        """Seconds to wait before starting child again. Raises FarmError when the farm must
        stop instead. ready_since: when this incarnation said it was ready (0: never)."""
        if code == BOOT_ERROR:
            raise FarmError(f"{child.name} could not start (see the error above); stopping")
        now = time.monotonic()
        for times in (child.deaths, child.boot_deaths):
            times.append(now)
            while times and times[0] < now - self.window:
                times.popleft()
        if became_ready(child, ready_since) or killed_by_signal(code):
            child.boot_deaths.pop()  # it worked, or was killed from outside: not a boot failure
        if len(child.boot_deaths) >= self.limit:
            raise FarmError(f"{child.name} exited {len(child.boot_deaths)} times within "
                            f"{self.window:g}s before it ever became ready (last: "
                            f"{exit_reason(code)}); it cannot start, so the farm stops. Read "
                            f"the errors above, fix the cause and start again.")
        child.restarts += 1
        return min(FIRST_BACKOFF_SECONDS * 2 ** (len(child.deaths) - 1), self.backoff_max)


def became_ready(child: Child, ready_since: float) -> bool:
    """Whether the readiness time on the board belongs to child's current process."""
    return ready_since >= child.spawned_at > 0


def killed_by_signal(code: int | None) -> bool:
    return code is not None and code < 0


def exit_reason(code: int | None) -> str:
    if code is None:
        return "unknown exit"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
