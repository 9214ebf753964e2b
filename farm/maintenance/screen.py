"""The maintenance stage of the pipeline: once per batch, after the canonical alerts are built
and before deduplication (Keep's order).

Each alert goes to the first active window that takes it (file windows in file order, then
Redis windows by name): a dropping window removes it, a suppressing one changes its status (and
its content digest with it). With no window active at the batch's sent_at (the common case) the
pipeline does not call it at all; a batch the active windows leave alone comes back as it was
(the same lists), having cost one condition check per alert and window.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
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


def screen(windows: Sequence[Window], alerts: list[dict], digests: list[bytes],
           digest: Callable[[dict], bytes]) -> Screening:
    """Apply the active `windows` to a batch's alerts (in place for suppressed ones). `digest`
    recomputes the content digest of an alert whose status changed."""
    taken = [(position, window) for position, window in enumerate(
        _first_taker(windows, alert) for alert in alerts) if window is not None]
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
            changed[position] = digest(alerts[position])
    out.dropped = len(dropped)
    out.signature = trail.hexdigest()
    if dropped:
        out.alerts = [a for i, a in enumerate(alerts) if i not in dropped]
        out.digests = [d for i, d in enumerate(changed) if i not in dropped]
    else:
        out.digests = changed
    return out


def _first_taker(windows: Sequence[Window], alert: dict) -> Window | None:
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
