"""The supervisor's restart policy, decision by decision: outside kills never stop the farm;
only a process that cannot start does."""

from __future__ import annotations

import signal
import time

import pytest

from farm.lifeline import BOOT_ERROR
from supervisor.children import Child, RestartPolicy
from supervisor.errors import FarmError

KILLED = -signal.SIGKILL


def started_child() -> Child:
    return Child("worker-0", board_slot=1, spawned_at=time.time() - 5)


def test_a_ready_process_killed_again_and_again_is_always_restarted_with_capped_backoff():
    policy = RestartPolicy(limit=5, window=60, backoff_max=30)
    child = started_child()
    delays = []
    for _ in range(50):
        delays.append(policy.after_death(child, KILLED, ready_since=time.time()))
        child.spawned_at = time.time() - 1
    assert delays[:5] == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert max(delays) == 30 and delays[-1] == 30
    assert child.restarts == 50


def test_a_ready_process_that_exits_by_itself_is_restarted_too():
    policy = RestartPolicy(limit=2, window=60, backoff_max=30)
    child = started_child()
    for _ in range(10):
        policy.after_death(child, 1, ready_since=time.time())
        child.spawned_at = time.time() - 1
    assert child.restarts == 10


def test_a_boot_error_stops_the_farm_at_once():
    policy = RestartPolicy(limit=5, window=60, backoff_max=30)
    with pytest.raises(FarmError, match="could not start"):
        policy.after_death(started_child(), BOOT_ERROR, ready_since=time.time())


def test_a_process_that_never_becomes_ready_stops_the_farm_after_the_limit():
    policy = RestartPolicy(limit=3, window=60, backoff_max=30)
    child = started_child()
    policy.after_death(child, 1, ready_since=0)
    policy.after_death(child, 1, ready_since=0)
    with pytest.raises(FarmError, match="before it ever became ready"):
        policy.after_death(child, 1, ready_since=0)


def test_a_process_killed_while_starting_is_not_a_boot_failure():
    policy = RestartPolicy(limit=2, window=60, backoff_max=30)
    child = started_child()
    for _ in range(10):
        policy.after_death(child, KILLED, ready_since=0)
    assert child.restarts == 10


def test_readiness_of_an_earlier_incarnation_does_not_count():
    policy = RestartPolicy(limit=2, window=60, backoff_max=30)
    child = started_child()
    earlier = child.spawned_at - 10
    policy.after_death(child, 1, ready_since=earlier)
    with pytest.raises(FarmError):
        policy.after_death(child, 1, ready_since=earlier)
