"""The maintenance stage of the pipeline: once per batch, after the canonical alerts are built
and before deduplication (Keep's order).

Each alert goes to the first active window that takes it (file windows in file order, then
Redis windows by name): a dropping window removes it, a suppressing one changes its status (and
its content digest with it). A batch no window touches comes back unchanged, so the common case
costs nothing per alert.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from farm.maintenance.window import DROPPED, AlertView, Window


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
    out = Screening([], [])
    if not windows:
        out.alerts, out.digests = alerts, digests
        return out
    view = AlertView()
    trail = hashlib.blake2b(digest_size=8)
    for position, (alert, alert_digest) in enumerate(zip(alerts, digests, strict=True)):
        view.alert = alert
        window = next((w for w in windows if w.takes(view)), None)
        if window is None:
            out.alerts.append(alert)
            out.digests.append(alert_digest)
            continue
        out.effects[(window.name, window.action)] += 1
        trail.update(f"{position}:{window.name}:{window.action}:"
                     f"{window.recover_previous_status};".encode())
        if window.action == DROPPED:
            out.dropped += 1
            continue
        window.apply(alert)
        out.alerts.append(alert)
        out.digests.append(digest(alert))
    if out.effects:
        out.signature = trail.hexdigest()
    else:
        out.alerts, out.digests = alerts, digests
    return out
