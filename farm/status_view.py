"""`farm status` for people: the supervisor's /status as tables, and the accounting check."""

from __future__ import annotations

import time

from rich.console import Console
from rich.table import Table

from farm.redis_keys import SETTLED


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


def render_status(doc: dict, console: Console | None = None) -> None:
    console = console or Console()
    console.print(f"[bold]farm[/] on {doc['node']} (pid {doc['pid']}): [bold]{doc['state']}[/], "
                  f"up {_duration(doc['uptime_seconds'])}")
    redis = doc["redis"]
    console.print(f"  redis {redis['url']}{' (embedded)' if redis['embedded'] else ''}; "
                  f"store {doc['store']['kind']} {doc['store']['where']}")
    for problem in (redis.get("down"), doc["store"].get("problem")):
        if problem:
            console.print(f"  [red]{problem}[/]")

    procs = Table(title="processes", title_justify="left")
    for column in ("id", "pid", "cpu", "alive", "restarts"):
        procs.add_column(column)
    for w in doc["workers"]:
        procs.add_row(w["id"], str(w["pid"]), str(w["cpu"]), _yes(w["alive"]),
                      str(w["restarts"]))
    ix = doc["indexer"]
    procs.add_row("indexer", str(ix["pid"]), "-", _yes(ix["alive"]), str(ix["restarts"]))
    ingest = doc.get("ingest") or {}
    for gateway in ingest.get("processes", []):
        procs.add_row(gateway["id"], str(gateway["pid"]), "-", _yes(gateway["alive"]),
                      str(gateway["restarts"]))
    notify = doc.get("notify") or {}
    for sender in notify.get("processes", []):
        procs.add_row(sender["id"], str(sender["pid"]), "-", _yes(sender["alive"]),
                      str(sender["restarts"]))
    if redis["embedded"]:
        procs.add_row("redis", str(redis.get("pid")), "-", _yes(not redis.get("down")),
                      str(redis.get("restarts", 0)))
    console.print(procs)
    if ingest.get("http"):
        console.print(f"  ingest gateway on http://{ingest['http']}")

    if "error" in doc:
        console.print(f"[red]{doc['error']}[/]")
        return
    render_nodes(doc.get("nodes", []), console)
    queues = doc["queues"]
    console.print(f"  queued: critical {queues['critical']:,}, normal {queues['normal']:,}; "
                  f"in flight {doc['inflight']:,}; dead letters {doc['dead_letters']:,}")
    if notify.get("url"):
        console.print(f"  notifications to {notify['url']}: waiting {notify.get('queue', 0):,}, "
                      f"overflowed to dead letters {notify.get('overflowed', 0):,}")
    if "maintenance" in doc:  # a farm from before the watcher has none
        render_watcher(doc["maintenance"], console)
    render_account(doc, console)


def render_account(doc: dict, console: Console) -> None:
    """The counters, and whether they add up."""
    queues = doc["queues"]
    counters = Table(title="accounting", title_justify="left")
    counters.add_column("counter")
    counters.add_column("value", justify="right")
    for name, value in doc["counters"].items():
        counters.add_row(name, f"{value:,}")
    console.print(counters)
    c = doc["counters"]
    gap = c["alerts_received"] - sum(c.get(name, 0) for name in SETTLED)
    drained = not (queues["critical"] or queues["normal"] or doc["inflight"])
    terms = " + ".join(name.split("_", 1)[1] for name in SETTLED)  # indexed + ... + empty
    if gap == 0:
        console.print(f"  received = {terms}: [green]every alert accounted for[/]")
    else:
        note = "" if drained else " (work is still queued or in flight)"
        console.print(f"  received - ({terms}) = [red]{gap:,}[/]{note}")


def render_watcher(watcher: dict, console: Console) -> None:
    """One line on the maintenance watcher of this node (farm/maintenance/watcher.py)."""
    every = watcher.get("release_seconds")
    if not every:
        console.print("  maintenance watcher: off ([maintenance] release_seconds = 0)")
    elif watcher.get("last_round") is None:
        console.print(f"  maintenance watcher: every {every}s; no round made on this node yet")
    else:
        ago = _duration(max(0.0, time.time() - watcher["last_round"]))
        console.print(f"  maintenance watcher: every {every}s; last round on this node {ago} "
                      f"ago read {watcher['last_held']:,} alerts held in maintenance and sent "
                      f"{watcher['last_sent']:,} back ({watcher['sent']:,} since start)")


def render_nodes(records: list[dict], console: Console) -> None:
    """Every live farm host on this Redis (the node registry, farm/nodes.py)."""
    table = Table(title=f"farm hosts on this Redis: {len(records)}", title_justify="left")
    for column in ("node", "pid", "state", "workers", "up", "version", "http"):
        table.add_column(column)
    now = max((r.get("seen", 0) for r in records), default=0)
    for r in records:
        table.add_row(str(r.get("node")), str(r.get("pid")), str(r.get("state")),
                      str(r.get("workers")), _duration(max(0, now - r.get("started", now))),
                      str(r.get("version")), str(r.get("http")))
    console.print(table)


def _yes(flag: bool) -> str:
    return "[green]yes[/]" if flag else "[red]no[/]"


_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "warning": "yellow", "info": "cyan",
                   "low": "dim"}


def render_alerts(alerts: list[dict], history: bool, console: Console | None = None) -> None:
    """`farm search` results as a table, newest first."""
    console = console or Console()
    if not alerts:
        console.print("no matching alerts")
        return
    table = Table(title=f"{len(alerts)} {'events' if history else 'alerts'}",
                  title_justify="left")
    for column in ("last received", "severity", "status", "name", "service"):
        table.add_column(column)
    table.add_column("event" if history else "dups of this version",
                     justify="left" if history else "right")
    for a in alerts:
        severity = a.get("severity", "")
        table.add_row(a.get("lastReceived", ""), f"[{_SEVERITY_STYLE.get(severity, '')}]"
                      f"{severity}[/]", a.get("status", ""), str(a.get("name", ""))[:60],
                      str(a.get("service") or ""),
                      a.get("eventId", "") if history else str(a.get("duplicates", 0)))
    console.print(table)
