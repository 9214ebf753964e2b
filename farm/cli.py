"""`farm`: start, stop and inspect a farm. Every error is one line that says what to do.

Each command imports what only it needs when it runs, so that `farm status` or `farm search`
does not load the supervisor, the HTTP stack or the engine client first."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request

import click

from farm.cli_support import config_option, connect_redis, fail, load_config
from farm.config import Config, ConfigError
from farm.correlation.commands import incidents
from farm.maintenance.commands import maintenance


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="farm")
def main():
    """farm: a high-volume alert processing farm in Keep's alert model."""


@main.command()
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes, a fixed count "
              "(default: [workers] count, 0 there meaning one per CPU, \"auto\" following "
              "the backlog).")
@click.option("--no-ingest", is_flag=True, help="Run without the HTTP ingest gateway.")
@config_option
def start(workers, no_ingest, config_path):
    """Run a farm in the foreground until SIGTERM or Ctrl-C, then drain and exit."""
    cfg = load_config(config_path)
    from farm.log import setup_logging

    setup_logging(cfg.farm.log_level, "supervisor")
    from farm.rules import validate

    rule_problems = validate(cfg)
    if rule_problems:
        for problem in rule_problems:
            click.echo(f"farm: rules: {problem}", err=True)
        sys.exit(2)
    if not no_ingest:
        from farm.ingest.process import check

        try:
            for warning in check(cfg):
                click.echo(f"farm: warning: {warning}", err=True)
        except ConfigError as exc:
            for problem in exc.problems:
                click.echo(f"farm: config: {problem}", err=True)
            sys.exit(2)
    count = workers or cfg.workers.count or os.cpu_count() or 1
    crowding = None if count == "auto" else cpu_crowding(count, cfg.workers.pin)
    if crowding:
        click.echo(f"farm: warning: {crowding}", err=True)
    from farm.redis_server import RedisServerError
    from farm.redisconn import RedisUnavailable
    from supervisor.pidfile import AlreadyRunning
    from supervisor.supervisor import FarmError, serve

    try:
        code = serve(cfg, count, ingest=not no_ingest)
    except (FarmError, RedisUnavailable, RedisServerError, AlreadyRunning) as exc:
        fail(str(exc))
    sys.exit(code)


def cpu_crowding(workers: int, pinned: bool) -> str | None:
    """A one-line warning when there are more workers than CPUs this process may run on (the
    ones the supervisor pins to), else None: workers sharing a CPU add no speed."""
    import psutil

    try:
        cpus = len(psutil.Process().cpu_affinity())
    except AttributeError:  # no affinity on this platform
        cpus = os.cpu_count() or 1
    if workers <= cpus:
        return None
    per_cpu = workers // cpus if workers % cpus == 0 else f"up to {-(-workers // cpus)}"
    share = f"{per_cpu} pinned to each" if pinned else "sharing them"
    return (f"{workers} workers on {cpus} CPUs ({share}): they take turns rather than add "
            f"speed; --workers {cpus} (one per CPU) is usually fastest")


def fetch_status(cfg: Config) -> dict | None:
    """The running farm's /status, or None when none answers at [supervisor] http."""
    url = f"http://{cfg.supervisor.http}/status"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@config_option
def status(as_json, config_path):
    """Workers, indexer, queues and the accounting counters of the running farm."""
    cfg = load_config(config_path)
    doc = fetch_status(cfg)
    if doc is None:
        fail(f"no farm answers at {cfg.supervisor.http} (start one with `farm start`, or "
             f"point --config at the farm's config)")
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        from farm.status_view import render_status

        render_status(doc)


@main.command()
@click.option("--timeout", type=float, default=None,
              help="Seconds to wait for the drain (default: [supervisor] grace_seconds + 10).")
@config_option
def stop(timeout, config_path):
    """Ask the running farm to drain and stop (SIGTERM), and wait until it has."""
    cfg = load_config(config_path)
    from supervisor.pidfile import read_pid

    pid = read_pid(cfg.data_dir / "farm.pid")
    if pid is None:
        doc = fetch_status(cfg)
        pid = doc.get("pid") if doc else None
    if pid is None:
        fail(f"no farm is running from {cfg.data_dir}")
    os.kill(pid, signal.SIGTERM)
    click.echo(f"farm: asked pid {pid} to drain and stop", err=True)
    deadline = time.monotonic() + (timeout or cfg.supervisor.grace_seconds + 10)
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            click.echo("farm: stopped", err=True)
            return
        time.sleep(0.2)
    fail(f"pid {pid} is still running after the grace period")


@main.command()
@click.argument("query", nargs=-1)
@click.option("--since", help="Only alerts last received within this time, e.g. 15m, 1h, 7d.")
@click.option("--severity", multiple=True,
              type=click.Choice(["critical", "high", "warning", "info", "low"]),
              help="Only these severities (repeatable).")
@click.option("--tenant", help="Only this tenant.")
@click.option("--history", is_flag=True,
              help="Search every stored event, not the current state per fingerprint "
              "(words match the same way; in SQLite a full scan unless [store] fts_history).")
@click.option("--incident", "incident_id", help="Only the alerts linked to this incident.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the matching documents as JSON.")
@config_option
def search(query, since, severity, tenant, history, incident_id, limit, as_json, config_path):
    """Find alerts by text (name, description, message) in the configured store."""
    from farm.search import Query, SearchError, text_freshness
    from farm.search import search as run_search
    from farm.units import parse_duration

    cfg = load_config(config_path)
    try:
        since_seconds = parse_duration(since) if since else None
    except ValueError as exc:
        fail(f"--since: {exc}", 2)
    try:
        asked = Query(" ".join(query), since_seconds, tuple(severity), tenant, history, limit,
                      incident_id)
        hits = run_search(cfg, asked)
    except SearchError as exc:
        fail(str(exc))
    behind = text_freshness(cfg, asked)
    if behind is not None:
        click.echo(f"farm: note: {behind.describe()}", err=True)
    if as_json:
        click.echo(json.dumps(hits, indent=2, default=str))
        return
    from farm.status_view import render_alerts

    render_alerts(hits, history)


@main.group()
def keys():
    """Manage the ingest gateway's API keys."""


@keys.command("add")
@click.argument("tenant")
@config_option
def keys_add(tenant, config_path):
    """Create an API key for TENANT, print it once, store only its hash in the config file."""
    if not config_path:
        fail("farm keys add needs the config file to write: --config FILE (or FARM_CONFIG)", 2)
    from farm.ingest.api_keys import KeysError, add_key

    try:
        key = add_key(config_path, tenant)
    except KeysError as exc:
        fail(str(exc))
    load_config(config_path)  # the file must still be a valid config
    click.echo(key)
    click.echo(f"farm: added a key for tenant {tenant!r} to {config_path}; it is shown only "
               f"once; running gateways take it up within 2 s", err=True)


@main.group()
def console():
    """The web console at /ui (docs/console.md)."""


@console.command("key")
@click.option("--admin", is_flag=True, help="A key for write actions ([console] admin_key).")
def console_key(admin):
    """Make a console key: print it once, and the [console] line that stores only its hash."""
    from farm.ingest.api_keys import hash_key, new_key

    key = new_key()
    click.echo(key)
    click.echo(f"farm: put this in the [console] section of the config, then restart the farm; "
               f"the key is shown only once:\n{'admin_key' if admin else 'key'} = "
               f"\"{hash_key(key)}\"", err=True)


@main.group()
def dlq():
    """Inspect and replay the dead-letter list."""


@dlq.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@config_option
def dlq_list(limit, as_json, config_path):
    """Newest dead letters first, with their reason and stage."""
    from farm.deadletters import list_letters

    cfg = load_config(config_path)
    letters = list_letters(connect_redis(cfg), cfg, limit)
    if as_json:
        click.echo(json.dumps(letters, indent=2, default=str))
        return
    if not letters:
        click.echo("the dead-letter list is empty")
    for letter in letters:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(letter["at"] or 0))
        click.echo(f"{when}Z  {letter['stage']:<9} batch {letter['batch']}  {letter['reason']}")


@dlq.command("replay")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Replay at most this many (oldest first); default all.")
@config_option
def dlq_replay(limit, config_path):
    """Push dead letters back into the queue, oldest first (after fixing their cause).

    It replays the oldest letters in the list (all, or --limit N); it does not read a
    selection from its input."""
    from farm.deadletters import replay

    cfg = load_config(config_path)
    replayed, skipped = replay(connect_redis(cfg), cfg, limit)
    click.echo(f"replayed {replayed} dead letters" + (f"; {skipped} could not be replayed and "
                                                       f"stay in the list" if skipped else ""))


main.add_command(incidents)
main.add_command(maintenance)

if __name__ == "__main__":
    main()
