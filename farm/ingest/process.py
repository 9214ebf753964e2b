"""One ingest gateway process: uvicorn (uvloop, httptools with the connection limits of
farm/ingest/connections.py) serving farm/ingest/app.py on [ingest] http, bound with
SO_REUSEPORT so that N processes share the port and the kernel spreads connections over them.

Signals: SIGINT is ignored (the supervisor decides when to stop); SIGTERM drains: stop
accepting, answer what is in flight, push open batches, exit 0.

For tests and manual runs:  python -m farm.ingest.process --config FILE --index N [--redis-url U]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import ipaddress
import logging
import resource
import signal
import socket
import sys

import uvicorn

from farm.config import Config, ConfigError
from farm.config import load as load_config
from farm.config.ingest import parse_watermark
from farm.lifeline import BOOT_ERROR, Lifeline
from farm.redis_server import redis_url_of
from farm.units import parse_bytes

log = logging.getLogger("farm.ingest")

LISTEN_BACKLOG = 2048
# Descriptors a gateway process needs besides its clients' connections: its Redis pool
# (farm/ingest/gateway.py REDIS_POOL_SIZE), the listening socket, logs, the metrics files.
FILES_BESIDE_CONNECTIONS = 128


def main(cfg: Config, index: int, redis_url: str, lifeline: Lifeline | None = None) -> None:
    """Run gateway process `index` until SIGTERM; exits 0 after draining, BOOT_ERROR if it
    cannot listen."""
    if lifeline is not None:
        lifeline.bind()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Imported here, in the gateway process: the supervisor and `farm start` import this module
    # for check() and need not load the web application with it.
    from farm import metrics
    from farm.log import setup_logging

    setup_logging(cfg.farm.log_level, f"ingest-{index}")
    metrics.use_identity(f"ingest-{index}")
    try:
        sock = bind(cfg.ingest.http, reuse_port=True)
    except OSError as exc:
        log.error("cannot listen on %s: %s; set [ingest] http (or FARM_INGEST_HTTP) to a free "
                  "address", cfg.ingest.http, exc.strerror or exc)
        sys.exit(BOOT_ERROR)

    from farm.ingest.app import make_app
    from farm.ingest.connections import ConnectionLimits, LimitedHttpToolsProtocol
    from farm.ingest.metrics import GatewayMetrics

    gateway_metrics = GatewayMetrics()
    app = make_app(cfg, redis_url, gateway_metrics)
    _allow_open_files(cfg.ingest.max_connections + FILES_BESIDE_CONNECTIONS)
    limits = ConnectionLimits(cfg.ingest.header_timeout_seconds,
                              cfg.ingest.request_timeout_seconds, cfg.ingest.max_connections)
    protocol = functools.partial(LimitedHttpToolsProtocol, limits=limits,
                                 on_cut=lambda reason: gateway_metrics.refused(reason, "-", "-"))
    config = uvicorn.Config(
        app, loop=_best("uvloop", "asyncio"), http=protocol, ws="none", lifespan="on",
        access_log=False, log_config=None, log_level="warning", server_header=False,
        proxy_headers=False,  # the gateway never uses the client address
        backlog=LISTEN_BACKLOG, timeout_keep_alive=cfg.ingest.keepalive_timeout_seconds,
        # Leave the supervisor's grace period room for flushing batches after the last reply.
        timeout_graceful_shutdown=max(1, cfg.supervisor.grace_seconds - 5))
    log.info("ingest gateway %d listening on http://%s", index, cfg.ingest.http)
    _Server(config, lifeline).run(sockets=[sock])
    log.info("ingest gateway %d drained", index)


class _Server(uvicorn.Server):
    """uvicorn's server with farm's signal contract: SIGTERM drains, SIGINT is ignored, and
    nothing is re-raised afterwards (uvicorn's own handler would end us by the signal); it
    tells the supervisor when it serves, and ends if the supervisor is gone."""

    def __init__(self, config: uvicorn.Config, lifeline: Lifeline | None):
        super().__init__(config)
        self.lifeline = lifeline

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.lifeline is not None and self.started:
            self.lifeline.ready()

    async def on_tick(self, counter: int) -> bool:
        if self.lifeline is not None and counter % 10 == 0:  # about once a second
            self.lifeline.exit_if_orphaned()
        return await super().on_tick(counter)

    @contextlib.contextmanager
    def capture_signals(self):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self._on_term)
        yield

    def _on_term(self, _signum, _frame) -> None:
        self.should_exit = True


def _allow_open_files(needed: int) -> None:
    """Raise the soft limit on open files towards `needed`, so that [ingest] max_connections,
    not a failing accept(), is what refuses connections; warn when the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < needed:
        log.warning("this process may open only %d files (ulimit -Hn), fewer than [ingest] "
                    "max_connections needs (%d); lower max_connections or raise the limit",
                    want, needed)


def _best(preferred: str, fallback: str) -> str:
    try:
        __import__(preferred)
        return preferred
    except ImportError:
        return fallback


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def bind(address: str, reuse_port: bool) -> socket.socket:
    """A listening-ready TCP socket bound to HOST:PORT."""
    host, port = split_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check(cfg: Config) -> list[str]:
    """Start-up check, run by the supervisor before it starts gateways: returns warnings to log;
    raises ConfigError (one line per problem) for what must stop start-up, such as
    low_water >= high_water, max_inflight_bytes < max_body or [ingest] http already in use by
    another program."""
    ingest = cfg.ingest
    if ingest.processes == 0:
        return []
    warnings: list[str] = []
    problems: list[str] = []
    host, _port = split_address(ingest.http)
    n_keys = sum(len(entries) for entries in ingest.keys.values())
    if ingest.allow_anonymous:
        warnings.append(
            f"[ingest] allow_anonymous = true: requests without a key are accepted as tenant "
            f"\"default\" on {ingest.http}; use this for a trial only"
            + ("" if is_loopback(host) else ", and never beyond loopback as now"))
    elif not n_keys:
        warnings.append(f"[ingest.keys] is empty: every webhook to {ingest.http} gets 401; "
                        f"create a key with `farm keys add TENANT`")
    if not is_loopback(host) and not n_keys:
        warnings.append(f"the ingest gateway listens beyond loopback ({ingest.http}) without "
                        f"API keys; add keys with `farm keys add TENANT`")
    if parse_bytes(ingest.max_inflight_bytes) < parse_bytes(ingest.max_body):
        problems.append(f"[ingest] max_inflight_bytes = {ingest.max_inflight_bytes!r} must be at "
                        f"least max_body = {ingest.max_body!r}, or a body that size could "
                        f"never be taken")
    if ingest.max_connections < ingest.max_inflight:
        warnings.append(f"[ingest] max_connections ({ingest.max_connections}) is below "
                        f"max_inflight ({ingest.max_inflight}): a process can never hold "
                        f"max_inflight requests, since each needs its own connection")
    high, low = parse_watermark(ingest.high_water), parse_watermark(ingest.low_water)
    if high[1] == low[1] and low[0] >= high[0]:
        problems.append(f"[ingest] low_water = {ingest.low_water!r} must be below high_water "
                        f"= {ingest.high_water!r}")
    elif high[1] != low[1]:
        warnings.append(f"[ingest] high_water ({ingest.high_water}) and low_water "
                        f"({ingest.low_water}) use different units (bytes, batches); the gate "
                        f"opens when the backlog is below low_water in its own unit")
    try:
        # Without SO_REUSEPORT, so that any other listener (even another farm's gateway,
        # which would otherwise silently share the port) makes this fail.
        bind(ingest.http, reuse_port=False).close()
    except OSError as exc:
        problems.append(f"[ingest] http = {ingest.http!r}: cannot listen there "
                        f"({exc.strerror or exc}); choose a free address, or start the farm "
                        f"with --no-ingest")
    if problems:
        raise ConfigError(problems)
    return warnings


def _run_from_command_line(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m farm.ingest.process",
                                     description="Run one ingest gateway process.")
    parser.add_argument("--config", help="TOML config file")
    parser.add_argument("--index", type=int, default=0, help="process number (metrics identity)")
    parser.add_argument("--redis-url", help="default: [redis] url, else the farm's own Redis")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        sys.exit("\n".join(f"config: {problem}" for problem in exc.problems))
    redis_url = args.redis_url or redis_url_of(cfg)
    main(cfg, args.index, redis_url)


if __name__ == "__main__":
    _run_from_command_line()
