"""The console's pages: each reads the store or Redis off the event loop, in one bounded page,
and renders one template. A store that cannot answer (not there yet, too slow a query) is a
line on the page, never a traceback."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from farm import deadletters
from farm.alert import iso_ms
from farm.console.filters import CHOICES, SINCE, Filters
from farm.correlation.queries import get_incident, list_incidents
from farm.search import (
    Query,
    SearchError,
    current_alert,
    raw_payloads,
    search_page,
    versions,
)

RAW_SHOWN = 5


def pretty_json(value: object) -> str:
    """A document as indented JSON for a <pre> (the template escapes it)."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS,
                        default=repr).decode()


def when(at: object) -> str:
    """A dead letter's `at` (Unix seconds) as ISO 8601."""
    return iso_ms(at) if isinstance(at, (int, float)) else ""


async def _read(function, *args, **kwargs):
    """Run a blocking store read in a thread; (result, None) or (None, the problem)."""
    try:
        return await asyncio.to_thread(function, *args, **kwargs), None
    except SearchError as exc:
        return None, str(exc)


async def alerts(console, request: Request) -> Response:
    filters = Filters.read(request.query_params)
    page, problem = await _read(search_page, console.cfg,
                                filters.query(console.page_size, console.deadline))
    return console.render(
        "alerts.html", account=await console.account_figures(), filters=filters,
        choices=CHOICES, since_choices=SINCE, alerts=page.alerts if page else [],
        next_link=filters.link(page.next_before) if page and page.next_before else None,
        first_link=filters.link() if filters.before else None, problem=problem)


async def alert(console, request: Request) -> Response:
    tenant = request.query_params.get("tenant", "default")
    fingerprint = request.query_params.get("fingerprint", "")
    cfg = console.cfg
    current, problem = await _read(current_alert, cfg, tenant, fingerprint)
    history, history_problem = await _read(versions, cfg, tenant, fingerprint,
                                           console.page_size, console.deadline)
    kept, raw_problem = await _read(raw_payloads, cfg, tenant, fingerprint, RAW_SHOWN)
    shown = current or (history[0] if history else None)
    enrichments = {name: shown.get(name) for name in shown.get("enriched_fields") or ()} \
        if shown else {}
    return console.render(
        "alert.html", account=await console.account_figures(), tenant=tenant,
        fingerprint=fingerprint, alert=shown, is_current=current is not None,
        versions=history or [], enrichments=enrichments, raw=kept or [],
        raw_sample=cfg.store.raw_sample,
        problem=problem or history_problem or raw_problem)


async def incidents(console, request: Request) -> Response:
    params = request.query_params
    status = params.get("status") or None
    text = params.get("q", "").strip()[:500]
    before = params.get("before") or None
    found, problem = await _read(list_incidents, console.cfg, status=status, text=text,
                                 limit=console.page_size + 1, before=before)
    found = found or []
    next_link = None
    if len(found) > console.page_size:
        found = found[:console.page_size]
        pairs = [(k, v) for k, v in (("status", status), ("q", text)) if v]
        next_link = "?" + urlencode([*pairs, ("before", found[-1]["last_seen_time"])])
    return console.render("incidents.html", account=await console.account_figures(),
                          incidents=found, status=status or "", text=text,
                          next_link=next_link, problem=problem)


async def incident(console, request: Request) -> Response:
    incident_id = request.query_params.get("id", "")
    found, problem = await _read(get_incident, console.cfg, incident_id)
    doc, links = found if found else (None, [])
    members, members_problem = await _read(
        search_page, console.cfg, Query(incident=incident_id, limit=console.page_size,
                                        deadline_seconds=console.deadline))
    return console.render("incident.html", account=await console.account_figures(),
                          incident=doc, incident_id=incident_id, links=links,
                          alerts=members.alerts if members else [],
                          problem=problem or members_problem)


async def dead_letters(console, request: Request) -> Response:
    start = request.query_params.get("start", "0")
    start = int(start) if start.isdigit() else 0
    redis = console.redis_of()
    letters = await asyncio.to_thread(deadletters.list_letters, redis, console.cfg,
                                      console.page_size + 1, start)
    more = len(letters) > console.page_size
    return console.render("dlq.html", account=await console.account_figures(),
                          letters=letters[:console.page_size], start=start,
                          next_start=start + console.page_size if more else None,
                          message=request.query_params.get("message", "")[:300])


async def replay(console, request: Request) -> Response:
    form = await request.form()
    if not console.access.writable:
        return console.render("forbidden.html", 403, reason="The console is read-only: "
                              "[console] admin_key is not set.")
    if not console.access.may_write(str(form.get("admin_key", ""))):
        return console.render("forbidden.html", 403, reason="Wrong admin key: nothing was "
                              "replayed.")
    limit = str(form.get("limit", ""))
    count = int(limit) if limit.isdigit() and int(limit) > 0 else None
    replayed, skipped = await asyncio.to_thread(deadletters.replay, console.redis_of(),
                                                console.cfg, count)
    message = f"replayed {replayed} dead letters" + (
        f"; {skipped} could not be replayed and stay in the list" if skipped else "")
    return RedirectResponse("/ui/dlq?" + urlencode({"message": message}), status_code=303)
