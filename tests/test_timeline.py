"""The firing timeline of every stored version (docs/keep-compatibility.md#firing-timeline), decided
in the dedup script on a real Redis: firingStartTime, firingStartTimeSinceLastResolved,
firingCounter, unresolvedCounter, startedAt, and the previous version's status and severity."""

from __future__ import annotations

import itertools

import pytest

from farm.dedup import Deduplicator
from farm.redis_keys import Keys

KEYS = Keys("tl")
_batches = itertools.count()


class Fingerprint:
    """Sends versions of one alert, one batch each, and returns what was decided."""

    def __init__(self, redis, name: str = "fp-1"):
        self.dedup = Deduplicator(redis, KEYS, ttl_seconds=3600)
        self.name = name
        self.minute = 0

    def alert(self, status: str, severity: str = "warning", batch: str | None = None) -> dict:
        self.minute += 1
        stamp = f"2026-01-01T00:{self.minute:02d}:00.000Z"
        return {"fingerprint": self.name, "eventId": f"{batch or 'b'}:0", "status": status,
                "severity": severity, "lastReceived": stamp, "receivedAt": stamp}

    def send(self, status: str, severity: str = "warning", content: str | None = None,
             batch: str | None = None) -> tuple[str, dict]:
        batch = batch or f"b{next(_batches)}"
        alert = self.alert(status, severity, batch)
        digest = (content or f"{status}/{severity}/{self.minute}").encode().ljust(16, b".")[:16]
        decision = self.dedup.decide(batch, 0, "default", [alert], [digest])
        return decision, alert


@pytest.fixture
def fp(redis):
    return Fingerprint(redis)


def test_a_first_firing_alert_starts_everything(fp):
    decision, alert = fp.send("firing")
    assert decision == "n"
    assert alert["firingStartTime"] == alert["lastReceived"]
    assert alert["firingStartTimeSinceLastResolved"] == alert["lastReceived"]
    assert (alert["firingCounter"], alert["unresolvedCounter"]) == (1, 1)
    assert alert["startedAt"] == alert["receivedAt"]
    assert (alert["previousStatus"], alert["previousSeverity"]) == (None, None)


def test_firing_again_keeps_the_start_and_counts(fp):
    _, first = fp.send("firing")
    decision, second = fp.send("firing", "critical")
    assert decision == "p"
    assert second["firingStartTime"] == first["lastReceived"]
    assert second["firingStartTimeSinceLastResolved"] == first["lastReceived"]
    assert (second["firingCounter"], second["unresolvedCounter"]) == (2, 2)
    assert second["startedAt"] == first["receivedAt"]
    assert (second["previousStatus"], second["previousSeverity"]) == ("firing", "warning")


def test_resolved_clears_the_start_times_and_the_unresolved_counter(fp):
    fp.send("firing")
    fp.send("firing")
    _, resolved = fp.send("resolved")
    assert resolved["firingStartTime"] is None
    assert resolved["firingStartTimeSinceLastResolved"] is None
    assert resolved["firingCounter"] == 3  # any new version counts, resolved ones too
    assert resolved["unresolvedCounter"] == 0


def test_firing_after_resolved_starts_a_new_episode(fp):
    _, first = fp.send("firing")
    fp.send("resolved")
    _, again = fp.send("firing")
    assert again["firingStartTime"] == again["lastReceived"]
    assert again["firingStartTimeSinceLastResolved"] == again["lastReceived"]
    assert (again["firingCounter"], again["unresolvedCounter"]) == (3, 1)
    assert again["startedAt"] == first["receivedAt"]
    assert again["previousStatus"] == "resolved"


def test_acknowledged_resets_the_firing_counter_and_keeps_the_since_resolved_start(fp):
    _, first = fp.send("firing")
    _, acked = fp.send("acknowledged")
    assert acked["firingCounter"] == 0
    assert acked["firingStartTime"] is None  # not firing
    assert acked["firingStartTimeSinceLastResolved"] == first["lastReceived"]
    assert acked["unresolvedCounter"] == 2
    _, firing = fp.send("firing")
    assert firing["firingCounter"] == 1  # counting again after an acknowledge
    assert firing["firingStartTime"] == firing["lastReceived"]  # the previous was not firing
    assert firing["firingStartTimeSinceLastResolved"] == first["lastReceived"]
    assert firing["unresolvedCounter"] == 3


def test_a_first_alert_that_is_not_firing(fp):
    _, resolved = fp.send("resolved")
    assert (resolved["firingStartTime"], resolved["firingStartTimeSinceLastResolved"]) == \
        (None, None)
    assert (resolved["firingCounter"], resolved["unresolvedCounter"]) == (1, 0)
    other = Fingerprint(fp.dedup.redis, "fp-2")
    _, pending = other.send("pending")
    assert (pending["firingStartTime"], pending["firingStartTimeSinceLastResolved"]) == \
        (None, None)
    assert (pending["firingCounter"], pending["unresolvedCounter"]) == (1, 1)


def test_full_duplicates_change_nothing(fp):
    fp.send("firing", content="same")
    decision, duplicate = fp.send("firing", content="same")
    assert decision == "f"
    assert "firingCounter" not in duplicate
    _, changed = fp.send("firing", content="other")
    assert changed["firingCounter"] == 2


def test_a_redelivered_batch_gets_the_same_timeline_after_later_versions(fp):
    fp.send("firing")
    _, original = fp.send("firing", batch="redelivered")
    fp.send("resolved")
    fp.send("firing")
    fp.minute -= 3  # the redelivered batch carries its original times
    again = fp.alert("firing", batch="redelivered")
    letters = fp.dedup.decide("redelivered", 0, "default", [again], [b"x" * 16])
    assert letters == "p"
    assert {k: again[k] for k in original} == original


def test_a_resent_batch_after_its_ack_is_the_same_version(redis, fp):
    fp.send("firing")
    _, original = fp.send("firing", batch="resent")
    redis.delete(KEYS.decided("resent"), KEYS.timeline("resent"))  # acked: memos gone
    fp.minute -= 1
    again = fp.alert("firing", batch="resent")
    assert fp.dedup.decide("resent", 0, "default", [again], [b"y" * 16]) == "n"
    assert {k: again[k] for k in original} == original
