"""`farm maintenance list|add|end`: maintenance windows at run time (kept in Redis)."""

from __future__ import annotations

import json
import time

import click

from farm.cli_support import config_option, connect_redis, fail, load_config


@click.group()
def maintenance():
    """Maintenance windows: alerts they take are dropped or kept as suppressed."""


@maintenance.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the windows as JSON.")
@config_option
def maintenance_list(as_json, config_path):
    """Every window, from the maintenance file and from Redis, and whether it is active now."""
    from farm.maintenance.report import render_windows, window_rows

    cfg = load_config(config_path)
    rows, problems = window_rows(cfg, connect_redis(cfg), time.time())
    for problem in problems:
        click.echo(f"farm: maintenance: {problem}", err=True)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    render_windows(rows)


@maintenance.command("add")
@click.option("--name", required=True, help="A name no window uses yet.")
@click.option("--condition", required=True,
              help='CEL over the alert, like \'service == "db" && severity < "critical"\'; '
                   '"*" for every alert.')
@click.option("--start", help="ISO 8601 time (default now; UTC when it has no offset).")
@click.option("--end", help="ISO 8601 time the window ends (default: when `farm maintenance "
              "end NAME` ends it).")
@click.option("--duration", help="How long it lasts from --start (or each --cron opening): 2h.")
@click.option("--cron", help='Recurring: five-field cron in UTC, like "0 2 * * sat"; needs '
              '--duration; --start/--end then bound the recurrence.')
@click.option("--suppress", is_flag=True, help="Keep the alerts with status suppressed "
              "(default: drop them).")
@click.option("--recover-previous-status", is_flag=True, help="With --suppress: status "
              "maintenance, the original kept in previous_status.")
@click.option("--ignore-status", multiple=True, help="Leave alerts in this status alone "
              "(repeatable).")
@click.option("--description", help="Free text shown by `farm maintenance list`.")
@config_option
def maintenance_add(name, condition, start, end, duration, cron, suppress,
                    recover_previous_status, ignore_status, description, config_path):
    """Add a window; every worker on every host applies it within about a second."""
    from farm.maintenance.report import add_from_cli
    from farm.maintenance.sources import MaintenanceError

    cfg = load_config(config_path)
    table = {"name": name, "condition": condition, "start": start, "end": end,
             "duration": duration, "cron": cron, "suppress": suppress,
             "recover_previous_status": recover_previous_status,
             "ignore_statuses": list(ignore_status), "description": description}
    try:
        click.echo(add_from_cli(cfg, connect_redis(cfg), table, time.time()))
    except MaintenanceError as exc:
        fail(f"maintenance: {exc}", 2)


@maintenance.command("end")
@click.argument("name")
@config_option
def maintenance_end(name, config_path):
    """End window NAME now (alerts sent from now on are no longer taken)."""
    from farm.maintenance.report import end_from_cli
    from farm.maintenance.sources import MaintenanceError

    cfg = load_config(config_path)
    try:
        click.echo(end_from_cli(cfg, connect_redis(cfg), name, time.time()))
    except MaintenanceError as exc:
        fail(f"maintenance: {exc}", 2)
