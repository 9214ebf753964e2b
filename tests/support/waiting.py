"""Waiting for a condition in a test, bounded: the bound only ends a wait that would never end,
it asserts nothing about speed."""

from __future__ import annotations

import time


def wait_until(predicate, what: str, timeout: float = 120, interval: float = 0.05):
    """predicate()'s first truthy value; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")
