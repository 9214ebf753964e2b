"""Where maintenance windows come from, and the view of them a worker keeps current.

- The file named by `[maintenance] rules`: `[[window]]` tables (farm/maintenance/window.py),
  read and checked like every rule file (one line per problem), re-read when it changes
  (farm/rules/reload.py, as the correlation rules are).
- The Redis hash `<prefix>:maintenance` (farm/redis_keys.py), written by `farm maintenance add|end`
  so that every worker on every host sees the same windows.

`Windows.current()` is what the pipeline calls once per batch: it looks for changes at most
once a second (a stat of the file, a GET of the version counter) and otherwise returns the
windows it holds, so a farm without windows pays one clock read per batch.
"""

from __future__ import annotations

import json
import logging
import math
import time
from datetime import UTC, datetime
from pathlib import Path

from redis.exceptions import WatchError

from farm.maintenance.window import Window, parse_window
from farm.rules.files import RuleProblem, read_toml, rule_label
from farm.rules.reload import ReloadingFile
from farm.rules.ruleset import config_relative

log = logging.getLogger("farm.maintenance")

TABLE = "window"
REFRESH_SECONDS = 1.0
# Ended windows stay in Redis this long: a batch redelivered meanwhile is judged as before.
KEEP_ENDED_SECONDS = 7 * 86_400


class MaintenanceError(Exception):
    """A window cannot be added or ended; str() is one line saying why and what to do."""


def rules_path(cfg) -> Path | None:
    """The configured windows file, or None."""
    name = cfg.maintenance.rules.strip()
    return config_relative(cfg, name) if name else None


def load_file(path: Path) -> tuple[list[Window], list[str]]:
    """Every window of a windows file, and one line per problem (file, window, key)."""
    data, problems = read_toml(path)
    if problems:
        return [], problems
    problems = [f"{path}: unknown table {key!r}; a maintenance file holds [[{TABLE}]] tables"
                for key in data if key != TABLE]
    tables = data.get(TABLE, [])
    if not isinstance(tables, list):
        return [], problems + [f"{path}: {TABLE} must be an array of tables ([[{TABLE}]])"]
    windows: list[Window] = []
    names: set[str] = set()
    for number, table in enumerate(tables, 1):
        label = rule_label(path, TABLE, number, table)
        try:
            window = parse_window(table, str(path))
        except RuleProblem as exc:
            problems.append(f"{label}: {exc}")
            continue
        if window.name in names:
            problems.append(f"{label}: another window is named {window.name!r}; names must be "
                            f"unique")
            continue
        names.add(window.name)
        windows.append(window)
    return windows, problems


def validate(cfg) -> list[str]:
    """Every problem with the configured windows file; empty when all is well (or none)."""
    path = rules_path(cfg)
    return load_file(path)[1] if path is not None else []


# -- Redis ----------------------------------------------------------------------------------

def read_redis(redis, keys) -> tuple[object, list[Window], list[str]]:
    """(version, windows by name, problems) read in one transaction."""
    pipe = redis.pipeline(transaction=True)
    pipe.get(keys.maintenance_version)
    pipe.hgetall(keys.maintenance)
    version, raw = pipe.execute()
    windows: list[Window] = []
    problems: list[str] = []
    for name, text in sorted(raw.items()):
        name = name.decode() if isinstance(name, bytes) else name
        try:
            windows.append(parse_window(json.loads(text), "redis"))
        except (ValueError, RuleProblem) as exc:
            problems.append(f"{keys.maintenance} {name!r}: {exc}")
    return version, windows, problems


def _write(redis, keys, name: str, table: dict | None, now: float) -> None:
    """Set (or with table None, remove) one window, prune long-ended ones and bump the version,
    in one transaction."""
    with redis.pipeline(transaction=True) as pipe:
        pipe.watch(keys.maintenance)
        stale = []
        for other, text in pipe.hgetall(keys.maintenance).items():
            try:
                if parse_window(json.loads(text), "redis").ended_before(now - KEEP_ENDED_SECONDS):
                    stale.append(other)
            except (ValueError, RuleProblem):
                continue  # someone else's mistake: `list` shows it; leave it alone
        pipe.multi()
        if table is not None:
            pipe.hset(keys.maintenance, name, json.dumps(table, default=str))
        else:
            pipe.hdel(keys.maintenance, name)
        if stale:
            pipe.hdel(keys.maintenance, *stale)
        pipe.incr(keys.maintenance_version)
        try:
            pipe.execute()
        except WatchError:
            raise MaintenanceError("the windows changed while this change was being made "
                                   "(another `farm maintenance` at the same moment); run it "
                                   "again") from None


def add_window(redis, keys, table: dict, file_names: set[str], now: float) -> Window:
    """Check `table` as a window and store it. Raises MaintenanceError when it is not valid or
    its name is taken (by the file, or by a Redis window that has not ended). A concurrent
    change makes redis-py raise WatchError."""
    try:
        window = parse_window(table, "redis")
    except RuleProblem as exc:
        raise MaintenanceError(str(exc)) from None
    if window.name in file_names:
        raise MaintenanceError(f"window {window.name!r} is defined in the maintenance file; "
                               f"pick another name")
    existing = redis.hget(keys.maintenance, window.name)
    if existing is not None:
        try:
            old = parse_window(json.loads(existing), "redis")
        except (ValueError, RuleProblem):
            old = None
        if old is not None and not old.ended_before(now):
            raise MaintenanceError(f"window {window.name!r} already exists and has not ended; "
                                   f"end it first (`farm maintenance end {window.name}`) or "
                                   f"pick another name")
    _write(redis, keys, window.name, table, now)
    return window


def end_window(redis, keys, name: str, file_names: set[str], now: float) -> str:
    """End a Redis window now: its end becomes now (a window that had not started yet is
    removed). Returns what was done, for people. Raises MaintenanceError."""
    if name in file_names:
        raise MaintenanceError(f"window {name!r} comes from the maintenance file; remove it "
                               f"there (workers re-read the file when it changes)")
    text = redis.hget(keys.maintenance, name)
    if text is None:
        raise MaintenanceError(f"no window named {name!r} (`farm maintenance list` shows them)")
    table = json.loads(text)
    window = parse_window(table, "redis")
    if window.ended_before(now):
        raise MaintenanceError(f"window {name!r} has already ended")
    if window.start is not None and window.start > now:
        _write(redis, keys, name, None, now)
        return f"removed window {name!r}, which had not started"
    table = {k: v for k, v in table.items() if k != "duration" or window.cron is not None}
    table["end"] = datetime_text(now)
    _write(redis, keys, name, table, now)
    return f"ended window {name!r}"


def datetime_text(t: float) -> str:
    """Unix seconds -> ISO 8601 UTC (a window's stored times), rounded down to the millisecond:
    a window that starts or ends "now" must not start a hair after now."""
    at = datetime.fromtimestamp(math.floor(t * 1000) / 1000, UTC)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- a worker's view ------------------------------------------------------------------------

class Windows:
    """The windows one worker applies: the file's then Redis's, kept current (see the module
    docstring). Building it reads the file (raises RuleError on problems) but not Redis: the
    first `current()` does, where a Redis error is the caller's to retry."""

    def __init__(self, cfg, redis, keys, refresh_seconds: float = REFRESH_SECONDS):
        self.redis = redis
        self.keys = keys
        self.refresh_seconds = refresh_seconds
        self.file = ReloadingFile(rules_path(cfg), load_file, refresh_seconds, "maintenance")
        self.from_redis: list[Window] = []
        self.version: object = None
        self.all: tuple[Window, ...] = tuple(self.file.items)
        self._checked = -math.inf
        self._redis_read = False

    def current(self) -> tuple[Window, ...]:
        now = time.monotonic()
        if now - self._checked >= self.refresh_seconds:
            self._checked = now
            self.refresh()
        return self.all

    def active_at(self, t: float) -> tuple[Window, ...]:
        """The windows open at unix time t, in the order they apply."""
        return tuple(w for w in self.current() if w.active_at(t))

    def refresh(self) -> None:
        """Re-read the file if it changed and Redis if its version did. Raises Redis errors."""
        changed = self.file.reload_if_changed()
        version = self.redis.get(self.keys.maintenance_version)
        if version != self.version or not self._redis_read:
            self.version, self.from_redis, problems = read_redis(self.redis, self.keys)
            self._redis_read = changed = True
            for problem in problems:
                log.error("maintenance: %s (that window is ignored)", problem)
        if changed:
            names = {w.name for w in self.file.items}
            self.all = tuple(self.file.items) + tuple(
                w for w in self.from_redis if w.name not in names)
