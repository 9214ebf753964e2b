"""Pacing: hold sends to the stream's logical schedule on the wall clock.

The stream's logical time `t` says when, at the asked rate and profile, each send is due. The
pacer waits until then. A producer that falls behind (the farm's backlog guard held it, or it
cannot generate fast enough) catches up at most MAX_DEBT seconds of traffic at full speed; debt
beyond that is dropped (the schedule shifts), so a stall never turns into a burst larger than a
second's worth. The report shows the achieved rate either way.
"""

from __future__ import annotations

MAX_DEBT = 1.0


class Pacer:
    def __init__(self, start: float, paced: bool = True):
        self.start = start
        self.paced = paced
        self.shifted = 0.0        # seconds of schedule dropped

    def delay(self, logical_t: float, now: float) -> float:
        """Seconds to wait before the send due at logical time `logical_t` (0: send now)."""
        if not self.paced:
            return 0.0
        due = self.start + self.shifted + logical_t
        if due > now:
            return due - now
        behind = now - due
        if behind > MAX_DEBT:
            self.shifted += behind - MAX_DEBT
        return 0.0
