"""`farm maintenance list|add|end` behind the CLI: rows for people, and add/end with the checks
that need both the config's file and Redis."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from farm.maintenance.sources import (
    MaintenanceError,
    add_window,
    datetime_text,
    end_window,
    load_file,
    read_redis,
    rules_path,
)
from farm.maintenance.window import Window
from farm.redis_keys import keys_for
from farm.redis_server import redis_url_of

_STATE_STYLE = {"active": "bold green", "upcoming": "cyan", "waiting": "", "ended": "dim",
                "disabled": "dim"}


def _file_windows(cfg) -> tuple[list[Window], list[str]]:
    path = rules_path(cfg)
    return load_file(path) if path is not None else ([], [])


def _row(window: Window, now: float) -> dict:
    action = window.action
    if window.recover_previous_status:
        action = "suppressed (maintenance)"
    return {"name": window.name, "from": window.origin, "state": window.state_at(now),
            "schedule": window.schedule(), "action": action,
            "condition": window.condition,
            "ignore_statuses": sorted(window.ignore_statuses),
            "description": window.table.get("description") or ""}


def window_rows(cfg, redis, now: float) -> tuple[list[dict], list[str]]:
    """One row per window (file first, then Redis), and the problems met reading them."""
    from_file, problems = _file_windows(cfg)
    _version, from_redis, redis_problems = read_redis(redis, _keys(cfg))
    names = {w.name for w in from_file}
    shadowed = [f"Redis window {w.name!r} is ignored: the maintenance file has one of that name"
                for w in from_redis if w.name in names]
    rows = [_row(w, now) for w in from_file]
    rows += [_row(w, now) for w in from_redis if w.name not in names]
    return rows, problems + redis_problems + shadowed


def add_from_cli(cfg, redis, options: dict, now: float) -> str:
    """Store the window the options describe (unset options left out; --start defaults to now
    for a one-off window). Returns the line to print. Raises MaintenanceError."""
    table = {k: v for k, v in options.items() if v not in (None, False, [], "")}
    if "start" not in table and "cron" not in table:
        table["start"] = datetime_text(now)
    from_file, _problems = _file_windows(cfg)
    window = add_window(redis, _keys(cfg), table, {w.name for w in from_file}, now)
    return f"added window {window.name!r} ({window.state_at(now)}, {window.schedule()}; " \
           f"alerts it takes are {window.action})"


def end_from_cli(cfg, redis, name: str, now: float) -> str:
    """End a Redis window now. Returns the line to print. Raises MaintenanceError."""
    from_file, _problems = _file_windows(cfg)
    keys = _keys(cfg)
    try:
        done = end_window(redis, keys, name, {w.name for w in from_file}, now)
    except ValueError as exc:
        raise MaintenanceError(f"window {name!r} in Redis cannot be read: {exc}") from None
    kept = [w for w in read_redis(redis, keys)[1] if w.name == name]
    if kept and kept[0].recover_previous_status:
        every = cfg.maintenance.release_seconds
        done += (f"; the alerts it holds in status maintenance get their own status back "
                 f"within {every}s unless another window takes them" if every else
                 "; the alerts it holds stay in status maintenance until notified again "
                 "([maintenance] release_seconds = 0)")
    return done


def render_windows(rows: list[dict], console: Console | None = None) -> None:
    console = console or Console()
    if not rows:
        console.print("no maintenance windows (add one with `farm maintenance add`, or name a "
                      "file in [maintenance] rules)")
        return
    table = Table(title="maintenance windows", title_justify="left")
    for column in ("name", "state", "schedule (UTC)", "alerts", "condition", "from"):
        table.add_column(column)
    for row in rows:
        style = _STATE_STYLE.get(row["state"], "")
        state = f"[{style}]{row['state']}[/]" if style else row["state"]
        ignored = f" (not {', '.join(row['ignore_statuses'])})" if row["ignore_statuses"] else ""
        table.add_row(row["name"], state, row["schedule"], row["action"],
                      row["condition"] + ignored, row["from"])
    console.print(table)


def _keys(cfg):
    return keys_for(cfg, redis_url_of(cfg))
