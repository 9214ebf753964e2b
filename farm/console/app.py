"""The console's routes, templates and key checks, mounted by supervisor/http.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import wraps
from importlib import resources

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from farm.config import Config
from farm.console import pages
from farm.console.access import COOKIE, Access
from farm.console.account import AccountWatch
from farm.redis_keys import Keys

# Alert text is untrusted: templates escape everything (autoescape), and the browser runs no
# script but the console's own file, and no inline script or style at all.
HEADERS = {"content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
           "img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
           "base-uri 'none'",
           "x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
           "cache-control": "no-store"}
STATIC = {"console.js": "text/javascript", "console.css": "text/css"}


class Console:
    """Everything a page needs: the config, Redis (read when a page asks), the key rules,
    the account readings and the templates."""

    def __init__(self, cfg: Config, redis_of: Callable[[], object]):
        self.cfg = cfg
        self.redis_of = redis_of
        self.access = Access(cfg)
        self.account = AccountWatch(Keys(cfg.redis.prefix))
        self.templates = Environment(loader=PackageLoader("farm.console"),
                                     autoescape=select_autoescape(default=True),
                                     trim_blocks=True, lstrip_blocks=True)
        self.templates.filters["json"] = pages.pretty_json
        self.templates.filters["when"] = pages.when

    @property
    def page_size(self) -> int:
        return self.cfg.console.page_size

    @property
    def deadline(self) -> float:
        return self.cfg.console.query_seconds

    def render(self, name: str, code: int = 200, **context) -> HTMLResponse:
        html = self.templates.get_template(name).render(
            store=self.cfg.store.kind, writable=self.access.writable, **context)
        return HTMLResponse(html, status_code=code, headers=HEADERS)

    async def account_figures(self) -> dict | None:
        try:
            return await asyncio.to_thread(self.account.read, self.redis_of())
        except Exception:  # Redis down: the page still renders, the header says so
            return None


def guarded(console: Console, page) -> Callable:
    """A route handler that answers only readers (a login form or a closed page otherwise)."""

    @wraps(page)
    async def handler(request: Request) -> Response:
        if console.access.closed_reason:
            return console.render("closed.html", 403, reason=console.access.closed_reason)
        if not console.access.may_read(request):
            return console.render("login.html", 401, failed=False)
        response = await page(console, request)
        response.headers.update(HEADERS)
        return response

    return handler


async def login(console: Console, request: Request) -> Response:
    form = await request.form()
    key = str(form.get("key", ""))
    if console.access.closed_reason:
        return console.render("closed.html", 403, reason=console.access.closed_reason)
    if not console.access.key or not console.access.may_read_key(key):
        return console.render("login.html", 401, failed=True)
    response = RedirectResponse("/ui", status_code=303, headers=HEADERS)
    response.set_cookie(COOKIE, key, path="/ui", httponly=True, samesite="strict")
    return response


async def logout(_console: Console, _request: Request) -> Response:
    response = RedirectResponse("/ui", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


async def account(console: Console, _request: Request) -> Response:
    return JSONResponse(await console.account_figures())


async def static(console: Console, request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC:
        return Response("not found", 404)
    body = resources.files("farm.console").joinpath("static", name).read_bytes()
    return Response(body, media_type=STATIC[name], headers={"cache-control": "max-age=300"})


def console_routes(cfg: Config, redis_of: Callable[[], object]) -> list[BaseRoute]:
    """The /ui routes for supervisor/http.py; `redis_of()` gives the supervisor's client."""
    console = Console(cfg, redis_of)

    def route(path: str, page, methods=("GET",), open_to_all: bool = False) -> Route:
        async def plain(request: Request) -> Response:
            return await page(console, request)
        return Route(path, plain if open_to_all else guarded(console, page),
                     methods=list(methods))

    return [route("/ui", pages.alerts), route("/ui/alert", pages.alert),
            route("/ui/incidents", pages.incidents), route("/ui/incident", pages.incident),
            route("/ui/dlq", pages.dead_letters),
            route("/ui/dlq/replay", pages.replay, methods=("POST",)),
            route("/ui/account", account), route("/ui/logout", logout),
            route("/ui/login", login, methods=("POST",), open_to_all=True),
            route("/ui/static/{name}", static, open_to_all=True)]
