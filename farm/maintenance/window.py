"""One maintenance window: when it is active, which alerts it takes, and what it does to them.

A window is a table (from a rule file's `[[window]]` or, as JSON, from Redis) with:
  name                     required, unique
  start, end               ISO 8601 instants (a time without offset is UTC), or TOML datetimes;
                           without end (or duration) the window lasts until it is ended
  duration                 instead of end ("2h"); with cron, how long each firing lasts
  cron                     five-field cron (UTC): the window opens at each firing for `duration`;
                           start and end, if given, bound the recurrence
  condition                CEL (farm/rules/condition.py's subset), "*" for every alert; `source`
                           is its first item and `severity <op> "high"` compares orders
  ignore_statuses          statuses the window leaves alone (default none)
  suppress                 false (default): drop the alert; true: keep it as `suppressed`
  recover_previous_status  with suppress: status `maintenance`, the original in previous_status
  enabled                  default true

`parse_window(table, origin)` checks every key and raises RuleProblem naming the key; nothing
here runs per alert except `Window.takes`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime

from farm.alert import SEVERITY_ORDER, STATUSES, iso_ms
from farm.maintenance.cron import Cron, CronError
from farm.rules.condition import ConditionError, compile_condition, with_field_tests
from farm.rules.files import RuleProblem, named
from farm.units import parse_duration

WINDOW_KEYS = ("name", "description", "enabled", "start", "end", "duration", "cron",
               "condition", "ignore_statuses", "suppress", "recover_previous_status")
EVERY_ALERT = "*"
DROPPED, SUPPRESSED = "dropped", "suppressed"
# A recurrence looks back one duration for its latest firing: bound the walk.
MAX_RECURRING_SECONDS = 31 * 86_400


def instant(value: object, key: str) -> float:
    """An ISO 8601 string or a TOML datetime -> unix seconds; no offset means UTC. Raises
    RuleProblem."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise RuleProblem(f"{key} {value!r} is not an ISO 8601 time; write for example "
                              f"2026-12-05T22:00:00Z") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise RuleProblem(f"{key} must be an ISO 8601 time, got {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _duration(value: object) -> float:
    if not isinstance(value, str):
        raise RuleProblem(f"duration must be a string like \"2h\" or \"30m\", got {value!r}")
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise RuleProblem(f"duration: {exc}") from None
    if seconds <= 0:
        raise RuleProblem("duration must be above 0")
    return seconds


def _flag(table: dict, key: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise RuleProblem(f"{key} must be true or false, got {value!r}")
    return value


def condition_view(alert: dict) -> dict:
    """An alert as a window's condition sees it (a shallow copy): `source` is its first item
    (null when empty) and `severity` its order, the rest as stored. A copy costs less than a
    Python-level lookup for every field every window reads."""
    view = alert.copy()
    severity = view.get("severity")
    view["severity"] = SEVERITY_ORDER.get(severity, severity)
    source = view.get("source")
    if isinstance(source, list):
        view["source"] = source[0] if source else None
    return view


class Window:
    """A parsed window. `active_at(t)` and `takes(alert)` are what the pipeline asks."""

    def __init__(self, table: dict, origin: str):
        """Build with `parse_window`, which checks the table and fills the rest."""
        self.table = table
        self.origin = origin  # the file's path, or "redis"
        self.name: str = table["name"]
        self.condition: str = table["condition"]
        self.holds: Callable[[object], bool] | None = None  # None: every alert
        self.enabled = True
        self.start: float | None = None
        self.end: float | None = None
        self.duration: float | None = None
        self.cron: Cron | None = None
        self.ignore_statuses: frozenset[str] = frozenset()
        self.suppress = False
        self.recover_previous_status = False
        self._minute = -1
        self._latest: float | None = None

    @property
    def action(self) -> str:
        return SUPPRESSED if self.suppress else DROPPED

    def active_at(self, t: float) -> bool:
        """Whether the window is open at unix time t (start <= t <= end, both inclusive)."""
        if not self.enabled:
            return False
        if self.start is not None and t < self.start:
            return False
        if self.end is not None and t > self.end:
            return False
        if self.cron is None:
            return True
        minute = math.floor(t / 60)
        if minute != self._minute:
            # Firings fall on whole minutes: the latest one at or before t is the latest at or
            # before t's minute, so one search serves a whole minute of batches.
            at = minute * 60.0
            floor = at - self.duration
            if self.start is not None:
                floor = max(floor, self.start)  # a firing before start opens nothing
            self._latest = self.cron.latest(at, floor)
            self._minute = minute
        return self._latest is not None and t <= self._latest + self.duration

    def state_at(self, t: float) -> str:
        """For people: active, upcoming, ended, disabled, or waiting (a recurring window
        between openings)."""
        if not self.enabled:
            return "disabled"
        if self.active_at(t):
            return "active"
        if self.ended_before(t):
            return "ended"
        if self.start is not None and t < self.start:
            return "upcoming"
        return "waiting"

    def ended_before(self, t: float) -> bool:
        return self.end is not None and self.end < t

    def takes(self, alert: dict, view: dict | None = None) -> bool:
        """Whether this window applies to the alert (status not ignored, condition true);
        `view` is the alert's `condition_view`, made here when not given."""
        if alert.get("status") in self.ignore_statuses:
            return False
        if self.holds is None:
            return True
        return self.holds(condition_view(alert) if view is None else view)

    def apply(self, alert: dict) -> None:
        """What a suppressing window does to an alert it takes."""
        if self.recover_previous_status:
            alert["previous_status"] = alert.get("status")
            alert["status"] = "maintenance"
        else:
            alert["status"] = "suppressed"

    def schedule(self) -> str:
        """The window's times for people, in UTC."""
        bounds = " ".join(part for part in (
            f"from {iso_ms(self.start)}" if self.start is not None else "",
            f"until {iso_ms(self.end)}" if self.end is not None else "") if part)
        if self.cron is None:
            return bounds
        return f"cron \"{self.cron.text}\" for {self.table['duration']}" + (
            f", {bounds}" if bounds else "")


def parse_window(table: dict, origin: str) -> Window:
    """One window table -> Window. Raises RuleProblem with one line naming the key."""
    if not isinstance(table, dict):
        raise RuleProblem("must be a table")
    named(table, WINDOW_KEYS)
    condition = table.get("condition")
    if not isinstance(condition, str) or not condition.strip():
        raise RuleProblem('condition is required: CEL like \'service == "db"\', or "*" for '
                          'every alert')
    if not isinstance(table.get("description", ""), str):
        raise RuleProblem("description must be a string")
    statuses = table.get("ignore_statuses", [])
    if not isinstance(statuses, list) or any(s not in STATUSES for s in statuses):
        raise RuleProblem(f"ignore_statuses must be a list of statuses from "
                          f"{', '.join(STATUSES)}; got {statuses!r}")
    window = Window(table, origin)
    window.ignore_statuses = frozenset(statuses)
    window.enabled = _flag(table, "enabled", True)
    window.suppress = _flag(table, "suppress", False)
    window.recover_previous_status = _flag(table, "recover_previous_status", False)
    if window.recover_previous_status and not window.suppress:
        raise RuleProblem("recover_previous_status needs suppress = true (a dropped alert has "
                          "no status to keep)")
    if condition.strip() != EVERY_ALERT:
        try:
            # The view holds severity as its order (condition_view), not as the literal.
            window.holds = with_field_tests(compile_condition(condition, severity_order=True),
                                            skip=frozenset({"severity"}))
        except ConditionError as exc:
            raise RuleProblem(f"condition {condition!r}: {exc}") from None
    _schedule(window, table)
    return window


def _schedule(window: Window, table: dict) -> None:
    if "start" in table:
        window.start = instant(table["start"], "start")
    if "end" in table:
        window.end = instant(table["end"], "end")
    if "duration" in table:
        window.duration = _duration(table["duration"])
    if "cron" in table:
        if not isinstance(table["cron"], str):
            raise RuleProblem(f"cron must be a string like \"0 2 * * sat\", got {table['cron']!r}")
        try:
            window.cron = Cron(table["cron"])
        except CronError as exc:
            raise RuleProblem(str(exc)) from None
        if window.duration is None:
            raise RuleProblem("a cron window needs duration: how long each opening lasts "
                              "(\"2h\")")
        if window.duration > MAX_RECURRING_SECONDS:
            raise RuleProblem("a cron window's duration can be at most 31d")
    else:
        if window.start is None:
            raise RuleProblem("start is required (an ISO 8601 time), or cron and duration for "
                              "a recurring window")
        if window.end is not None and window.duration is not None:
            raise RuleProblem("give end or duration, not both")
        if window.duration is not None:
            window.end = window.start + window.duration
    if window.start is not None and window.end is not None and window.end < window.start:
        raise RuleProblem("end is before start")
