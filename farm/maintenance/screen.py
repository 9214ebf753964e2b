"""The maintenance stage of the pipeline: once per batch, after the canonical alerts are built
and before deduplication (Keep's order).

Each alert goes to the first active window that takes it (file windows in file order, then
Redis windows by name): a dropping window removes it, a suppressing one changes its status (and
its content digest with it). With no window active at the batch's sent_at (the common case) the
pipeline does not call it at all; a batch the active windows leave alone comes back as it was
(the same lists), having cost one condition check per alert and window, or one lookup for an
alert whose content was screened before (Verdicts).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from farm.maintenance.window import DROPPED, Window, condition_view


@dataclass
class Screening:
    """What the windows did to one batch's alerts."""

    alerts: list[dict]
    digests: list[bytes]
    dropped: int = 0
    effects: Counter = field(default_factory=Counter)   # (window name, action) -> alerts
    # Names what was done, by position: a redelivered batch whose windows did the same thing
    # finds the same dedup memo; if the windows changed in between, it decides afresh instead
    # of replaying decisions made for other positions.
    signature: str = ""


# Remembered verdicts, over every set of windows and digest rule together: about 10 MB at most.
VERDICTS_LIMIT = 100_000


class Verdicts:
    """Which window (if any) took an alert, remembered by its content digest. Most alerts are
    re-sent copies of earlier ones (a firing alert is notified again and again), and a window's
    verdict depends only on the status and the fields its condition reads: when the digest
    covers all of them (ContentHasher.covers: none is an ignored field), equal digests get equal
    verdicts, and a copy costs one lookup instead of every window's condition. Remembered per
    set of active windows and digest rule, so a window that opens, closes or is edited starts
    afresh.

    A digest is remembered as an int made here, never as the batch's own bytes object: a memo
    that keeps objects allocated among a batch's alerts keeps the allocator from reusing their
    memory whole, and other work in the process measured slower for it (docs/performance.md,
    "Long-lived memos and the allocator")."""

    def __init__(self, limit: int = VERDICTS_LIMIT):
        self.limit = limit
        self.size = 0
        self.memos: dict[tuple, dict[int, int] | None] = {}

    def first_takers(self, windows: Sequence[Window], alerts: list[dict], digests: list[bytes],
                     hasher) -> list[Window | None]:
        windows = tuple(windows)
        key = (windows, hasher)
        memo = self.memos.get(key, False)
        if memo is False:
            if len(self.memos) >= 8:
                self.clear()
            memo = {} if _digest_decides(windows, hasher) else None
            self.memos[key] = memo
        if memo is None:
            return [first_taker(windows, alert) for alert in alerts]
        if self.size + len(alerts) > self.limit:
            self.clear()
            memo = self.memos[key] = {}
        out: list[Window | None] = []
        for alert, digest in zip(alerts, digests, strict=True):
            number = int.from_bytes(digest, "little")
            index = memo.get(number)
            if index is None:
                taker = first_taker(windows, alert)
                memo[number] = -1 if taker is None else windows.index(taker)
                self.size += 1
                out.append(taker)
            else:
                out.append(None if index < 0 else windows[index])
        return out

    def clear(self) -> None:
        self.memos.clear()
        self.size = 0


def _digest_decides(windows: tuple[Window, ...], hasher) -> bool:
    """Whether equal digests mean equal verdicts of these windows: the digest covers the status
    and every path their conditions read."""
    paths = {("status",)}
    for window in windows:
        if window.holds is not None:
            read = getattr(window.holds, "paths", None)
            if read is None:
                return False
            paths |= read
    return hasher.covers(paths)


def screen(windows: Sequence[Window], alerts: list[dict], digests: list[bytes],
           hasher, verdicts: Verdicts | None = None) -> Screening:
    """Apply the active `windows` to a batch's alerts (in place for suppressed ones), with
    verdicts remembered across batches in `verdicts` if given. `hasher` (a ContentHasher) made
    `digests` and recomputes the digest of an alert whose status changed."""
    if verdicts is None:
        takers = [first_taker(windows, alert) for alert in alerts]
    else:
        takers = verdicts.first_takers(windows, alerts, digests, hasher)
    taken = [(position, window) for position, window in enumerate(takers)
             if window is not None]
    out = Screening(alerts, digests)
    if not taken:
        return out
    trail = hashlib.blake2b(digest_size=8)
    dropped: set[int] = set()
    changed = list(digests)
    for position, window in taken:
        out.effects[(window.name, window.action)] += 1
        trail.update(f"{position}:{window.name}:{window.action}:"
                     f"{window.recover_previous_status};".encode())
        if window.action == DROPPED:
            dropped.add(position)
        else:
            window.apply(alerts[position])
            changed[position] = hasher.digest(alerts[position])
    out.dropped = len(dropped)
    out.signature = trail.hexdigest()
    if dropped:
        out.alerts = [a for i, a in enumerate(alerts) if i not in dropped]
        out.digests = [d for i, d in enumerate(changed) if i not in dropped]
    else:
        out.digests = changed
    return out


def first_taker(windows: Sequence[Window], alert: dict) -> Window | None:
    """The first window that takes the alert (Window.takes, unrolled: this runs per alert and
    window)."""
    status = alert.get("status")
    view = None
    for window in windows:
        if status in window.ignore_statuses:
            continue
        if window.holds is None:
            return window
        if view is None:
            view = condition_view(alert)
        if window.holds(view):
            return window
    return None
