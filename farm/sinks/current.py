"""Current state per fingerprint, coalesced per batch (shared by every store's encoder)."""

from __future__ import annotations

from farm.dedup import FULL


def coalesce(items: list[tuple[dict, str]],
             ) -> tuple[list[tuple[dict, int]], list[tuple[str, int, str]]]:
    """Split one batch's (alert, decision) pairs into current-state writes.

    Returns (versions, bumps): `versions` holds the last new/partial alert of each fingerprint
    with the number of full duplicates that followed it in the batch; `bumps` holds, for
    fingerprints with only full duplicates here, (fingerprint, count, newest lastReceived).
    """
    latest: dict[str, list] = {}
    for alert, decision in items:
        fp = alert["fingerprint"]
        entry = latest.get(fp)
        if decision != FULL:
            latest[fp] = [alert, 0, None]
        elif entry is None:
            latest[fp] = [None, 1, alert["lastReceived"]]
        else:
            entry[1] += 1
            if entry[0] is None and alert["lastReceived"] > entry[2]:
                entry[2] = alert["lastReceived"]
    versions = [(alert, dups) for alert, dups, _ in latest.values() if alert is not None]
    bumps = [(fp, dups, seen) for fp, (alert, dups, seen) in latest.items() if alert is None]
    return versions, bumps
