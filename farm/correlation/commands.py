"""`farm incidents list|show|resolve|acknowledge|confirm`: incidents as the store holds them,
and changing one by hand through the farm's own write path (a control batch a worker carries
out)."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable

import click
import msgpack
import orjson

from farm.cli_support import config_option, connect_redis, fail, load_config
from farm.correlation.stage import ACKNOWLEDGE_INCIDENT, CONFIRM_INCIDENT, RESOLVE_INCIDENT
from farm.redis_keys import Keys, keys_for
from farm.redis_server import redis_url_of


@click.group()
def incidents():
    """Incidents made by correlation rules ([correlation] rules)."""


@incidents.command("list")
@click.argument("query", nargs=-1)
@click.option("--status", type=click.Choice(["firing", "acknowledged", "resolved"]))
@click.option("--tenant", help="Only this tenant.")
@click.option("--all", "everything", is_flag=True,
              help="Also incidents not visible yet (under their threshold, or candidates).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@config_option
def incidents_list(query, status, tenant, everything, limit, as_json, config_path):
    """Incidents, most recently seen first; words in QUERY must be in the name."""
    from farm.correlation.queries import list_incidents
    from farm.search import SearchError

    cfg = load_config(config_path)
    try:
        found = list_incidents(cfg, status, tenant, everything, " ".join(query), limit)
    except SearchError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        click.echo("no incidents")
    for doc in found:
        shown = "" if doc["is_visible"] else (" candidate" if doc["is_candidate"] else " hidden")
        click.echo(f"{doc['id']}  {doc['status']:<12} {doc['severity']:<8} "
                   f"{doc['alerts_count']:>5} alerts  {doc['last_seen_time']}{shown}  "
                   f"{doc['name']}")


@incidents.command("show")
@click.argument("incident_id")
@click.option("--json", "as_json", is_flag=True)
@config_option
def incidents_show(incident_id, as_json, config_path):
    """One incident and the fingerprints linked to it."""
    from farm.correlation.queries import get_incident
    from farm.search import SearchError

    cfg = load_config(config_path)
    try:
        doc, links = get_incident(cfg, incident_id)
    except SearchError as exc:
        fail(str(exc))
    if doc is None:
        fail(f"no incident {incident_id} in the store (`farm incidents list --all` lists "
                 f"them)")
    if as_json:
        click.echo(json.dumps({**doc, "alerts": links}, indent=2))
        return
    for key in ("id", "name", "status", "severity", "alerts_count", "is_visible",
                "is_candidate", "rule", "rule_fingerprint", "start_time", "last_seen_time",
                "end_time", "same_incident_in_the_past_id", "sources", "services"):
        click.echo(f"{key:<30} {doc.get(key)}")
    click.echo(f"alerts ({len(links)}); `farm search --incident {incident_id}` shows them:")
    for link in links:
        click.echo(f"  {link['fingerprint']}  linked by {link['eventId']} at {link['linkedAt']}")


def _incident_state(redis, keys: Keys, incident_id: str, tenant: str) -> dict | None:
    """The incident's state as the correlation script keeps it (farm/redis_keys.py), or None."""
    raw = redis.hget(keys.incident(incident_id, tenant), "state")
    return orjson.loads(raw) if raw else None


_TIMEOUT = click.option("--timeout", type=float, default=30.0, show_default=True,
                        help="Seconds to wait for a worker to carry it out.")
_TENANT = click.option("--tenant", default="default", show_default=True,
                       help="The incident's tenant (on a Redis Cluster its state lives in the "
                            "tenant's hash slot).")


@incidents.command("resolve")
@click.argument("incident_id")
@_TIMEOUT
@_TENANT
@config_option
def incidents_resolve(incident_id, timeout, tenant, config_path):
    """Resolve an incident by hand: a worker marks it resolved in Redis and the indexer
    stores the new state, like any other change."""
    _by_hand(RESOLVE_INCIDENT, incident_id, timeout, tenant, config_path,
             lambda state: state.get("status") == "resolved", "resolved")


@incidents.command("acknowledge")
@click.argument("incident_id")
@_TIMEOUT
@_TENANT
@config_option
def incidents_acknowledge(incident_id, timeout, tenant, config_path):
    """Acknowledge a firing incident: it stays open (alerts still join it, and it still
    resolves by its rule's resolve_on), with status acknowledged, as in Keep."""

    def not_resolved(state: dict) -> None:
        if state.get("status") == "resolved":
            fail(f"incident {incident_id} is resolved; only an open one can be acknowledged")

    _by_hand(ACKNOWLEDGE_INCIDENT, incident_id, timeout, tenant, config_path,
             lambda state: state.get("status") == "acknowledged", "acknowledged",
             check=not_resolved)


@incidents.command("confirm")
@click.argument("incident_id")
@_TIMEOUT
@_TENANT
@config_option
def incidents_confirm(incident_id, timeout, tenant, config_path):
    """Confirm a candidate incident (its rule has require_approve): it becomes visible, as
    Keep's confirm makes it. A worker changes it in Redis and the indexer stores it."""

    def candidate(state: dict) -> None:
        if state.get("candidate") != 1:
            fail(f"incident {incident_id} is not a candidate: its rule does not have "
                 f"require_approve, so it shows by itself once its threshold is reached")

    _by_hand(CONFIRM_INCIDENT, incident_id, timeout, tenant, config_path,
             lambda state: state.get("visible") == 1, "confirmed: it is visible now",
             check=candidate)


def _by_hand(command: str, incident_id: str, timeout: float, tenant: str, config_path,
             done: Callable[[dict], bool], said: str,
             check: Callable[[dict], None] | None = None) -> None:
    """Queue a control batch that changes one incident, and wait until a worker did and the
    store has it (the batch's memo is gone once it is acked, after the commit)."""
    cfg = load_config(config_path)
    redis = connect_redis(cfg)
    keys = keys_for(cfg, redis_url_of(cfg))
    state = _incident_state(redis, keys, incident_id, tenant)
    if state is None:
        fail(f"no incident {incident_id} in Redis (a wrong id, or untouched for longer than "
             f"[correlation] ttl_seconds)")
    if check is not None:
        check(state)
    if done(state):
        click.echo(f"incident {incident_id} was already {said.split(':')[0]}")
        return
    batch = {"v": 1, "id": uuid.uuid4().hex, "tenant": state["tenant"], "provider": "keep",
             "sent_at": time.time(), "events": [], "control": {command: incident_id}}
    redis.lpush(keys.queue("critical", random.randrange(keys.shards)), msgpack.packb(batch))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        memo = redis.exists(keys.incidents_memo(batch["id"], tenant))
        if not memo and done(_incident_state(redis, keys, incident_id, tenant) or {}):
            click.echo(f"incident {incident_id} {said}")
            return
        time.sleep(0.2)
    fail(f"asked the farm to {command.split('_')[0]} {incident_id}, but no worker did within "
         f"{timeout:g}s (is the farm running? `farm status`); it stays queued and happens when "
         f"one does")
