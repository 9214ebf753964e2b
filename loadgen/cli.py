"""`farm-loadgen`: realistic alert traffic at a chosen volume, and an end-to-end account of it.

    farm-loadgen [--config FILE] [--redis URL] --rate R (--duration D | --total T)
                 [--mix ...] [--profile P] [--seed N] [--min-achieved PERCENT] [--verify] [--json]

Exit codes: 0 everything accounted for; 1 loss (an alert neither stored, duplicate-dropped nor
dead-lettered, a stored row the run never sent, or farm counters that do not add up); 2 a usage
or set-up problem; 3 the farm did not drain, so nothing could be verified; 4 no loss, but some
alerts were dead-lettered, refused, or sent without an answer; 5 no loss, but the run achieved
less than --min-achieved percent of the asked rate; 6 no loss, but the incident storm's
incidents are not the ones its rule must produce; 130 interrupted. Every error is one line.
"""

from __future__ import annotations

import collections
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import click
from redis import Redis, RedisError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from farm import config as config_mod
from farm.cli import fetch_status
from farm.config import Config
from farm.redis_server import redis_url_of
from farm.redisconn import RedisUnavailable, connect
from farm.units import format_bytes, parse_duration
from loadgen import latency, report, runner, timeline, verify
from loadgen.incidents import StormRule, storm_rule_of
from loadgen.options import DEFAULTS, Plan, PlanOptions, make_plan
from loadgen.producer import producer_keys
from loadgen.profiles import PROFILES
from loadgen.stores import StoreError, StoreReader, reader_for

OK, LOSS, USAGE, NOT_DRAINED, DEAD, SHORT, INCIDENTS, INTERRUPTED = 0, 1, 2, 3, 4, 5, 6, 130


class Failure(Exception):
    """Stop with one line and an exit code."""

    def __init__(self, message: str, code: int = USAGE):
        super().__init__(message)
        self.code = code


@click.command(context_settings={"help_option_names": ["-h", "--help"],
                                 "max_content_width": 100})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar="FARM_CONFIG",
              help="The farm's config file: where its Redis, store and supervisor are.")
@click.option("--redis", "redis_url", help="Redis URL; overrides the config's.")
@click.option("--target", default="redis", show_default=True,
              help="'redis' (LPUSH wire-v1 batches), or the ingest gateway's base URL "
                   "(http://host:port: POST /alerts/event/{provider}).")
@click.option("--api-key", envvar="FARM_LOADGEN_API_KEY",
              help="API key sent as X-API-KEY to the HTTP target (env FARM_LOADGEN_API_KEY).")
@click.option("--rate", help="600GB/day, 20MB/s (payload volume) or 50k/s (alerts).")
@click.option("--duration", help="How long to send: 60s, 10m, 1h.")
@click.option("--total", help="How much to send: 5GB, or 2M alerts.")
@click.option("--mix", default=DEFAULTS.mix, show_default=True,
              help="Share of notifications per provider.")
@click.option("--profile", default=DEFAULTS.profile, show_default=True,
              type=click.Choice(list(PROFILES)),
              help="; ".join(f"{p.name}: {p.help}" for p in PROFILES.values()))
@click.option("--seed", type=int, help="Same seed, same options: the same payloads, byte for "
              "byte (timestamps too with --epoch). Default: random, printed in the report.")
@click.option("--epoch", help="Unix seconds or ISO time of the payload clock's origin "
              "(default: the run's start).")
@click.option("--fingerprints", default=DEFAULTS.fingerprints, show_default=True, type=int,
              help="How many distinct alerts exist.")
@click.option("--repeat", default=DEFAULTS.repeat, show_default=True,
              help="Share of notifications that are exact re-sends (full duplicates).")
@click.option("--flap", default=DEFAULTS.flap, show_default=True,
              help="Share of notifications that flip firing<->resolved (partial duplicates).")
@click.option("--labels", default=DEFAULTS.labels, show_default=True,
              help="Extra labels per alert.")
@click.option("--label-values", default=DEFAULTS.label_values, show_default=True, type=int,
              help="Distinct values per label key (label cardinality).")
@click.option("--size-median", default=DEFAULTS.size_median, show_default=True,
              help="Median payload size (log-normal, long tail).")
@click.option("--size-max", default=DEFAULTS.size_max, show_default=True,
              help="Largest payload.")
@click.option("--storm-hosts", default=DEFAULTS.storm_hosts, show_default=True, type=int,
              help="--profile incident-storm: hosts whose alerts fire and resolve in waves.")
@click.option("--storm-alerts", default=DEFAULTS.storm_alerts, show_default=True, type=int,
              help="--profile incident-storm: alerts per host.")
@click.option("--storm-waves", default=DEFAULTS.storm_waves, show_default=True, type=int,
              help="--profile incident-storm: waves over the run (each fires every alert, "
                   "then resolves it).")
@click.option("--producers", default=DEFAULTS.producers, show_default=True, type=int,
              help="Producer processes (one core each).")
@click.option("--batch-events", default=DEFAULTS.batch_events, show_default=True, type=int,
              help="Most wire events per batch (Redis target).")
@click.option("--batch-bytes", default=DEFAULTS.batch_bytes, show_default=True,
              help="Most payload per batch (Redis target).")
@click.option("--batch-wait", default=DEFAULTS.batch_wait, show_default=True,
              help="Longest a batch stays open (Redis target).")
@click.option("--tenant", default=DEFAULTS.tenant, show_default=True, help="Tenant of the batches.")
@click.option("--concurrency", default=DEFAULTS.concurrency, show_default=True, type=int,
              help="Requests in flight per producer (HTTP target).")
@click.option("--max-backlog", default=DEFAULTS.max_backlog, show_default=True,
              help="Pause pushing while the farm's queues hold more than this.")
@click.option("--drain-timeout", default="10m", show_default=True,
              help="--verify: longest wait for the farm to drain.")
@click.option("--min-achieved", default=95.0, show_default=True,
              type=click.FloatRange(0, 100), metavar="PERCENT",
              help="Exit 5 when the run achieves less than this share of the asked rate "
                   "(0: never).")
@click.option("--verify", is_flag=True,
              help="Wait for the farm to drain, then account for every alert sent.")
@click.option("--spike", help="With --profile spike: the spike's factor and length, like "
              "10x:30s (it starts a quarter into the run; needs --duration).")
@click.option("--timeline", "timeline_path", type=click.Path(dir_okay=False),
              help="Write what happened each second (sent, committed, backlog, p99) to this "
                   "JSON file.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def command(**opts):
    """Realistic alert traffic for a farm, and an end-to-end account of it."""
    sys.exit(execute(opts))


def execute(opts: dict) -> int:
    """One farm-loadgen run from click's parameters: check the options, send, account for what
    was sent under --verify, and print the report. Returns the exit code; raises Failure."""
    cfg = _load_config(opts["config_path"])
    http_url = _http_target(opts["target"])
    redis_url = opts["redis_url"] or redis_url_of(cfg)
    plan, drain_timeout = _plan(opts, cfg, redis_url, http_url)
    # Redis carries the batches to the farm, and under --verify its dead letters.
    client = (_connect(redis_url, opts["redis_url"], cfg)
              if http_url is None or plan.verify else None)
    baseline = _baseline(cfg, plan) if plan.verify else None
    err = Console(stderr=True)
    progress = None if opts["quiet"] else RichProgress(err)
    sampler = None
    if opts["timeline_path"] or plan.profile.name == "spike":
        sampler = timeline.Sampler(lambda: fetch_status(cfg), client, cfg.redis.prefix,
                                   progress)
        sampler.start()
    try:
        outcome = runner.run(plan, sampler or progress, _refuse_replayed_seed(plan))
    except runner.RunError as exc:
        raise Failure(str(exc)) from None
    checked = None
    try:
        if baseline is not None and outcome.interrupted:
            baseline.reader.close()
        elif baseline is not None:
            checked = _account(plan, outcome, cfg, client, baseline, drain_timeout,
                               RichDrain(err) if progress is not None else None)
    finally:
        if sampler is not None:
            sampler.stop()
    doc = report.document(plan, outcome, *(checked.report_parts() if checked else ()),
                          min_achieved=opts["min_achieved"] / 100)
    if sampler is not None:
        doc["spike"] = _observed(plan, outcome, sampler, checked, opts["timeline_path"])
    _print_report(doc, opts["as_json"])
    return _exit_code(outcome, checked.verdict if checked else None, doc["achieved"]["short"])


@dataclass(frozen=True)
class _Baseline:
    """The farm before the run, for --verify: its /status, its store, its latency histogram
    (read only when the store keeps no commit times)."""

    status: dict
    reader: StoreReader
    histogram: dict | None
    storm_rule: StormRule | None = None     # --profile incident-storm


@dataclass(frozen=True)
class _Accounted:
    """What --verify found after the run."""

    verdict: verify.Verdict
    counters: dict
    drain_seconds: float
    histogram_latency: dict | None

    def report_parts(self) -> tuple:
        """report.document's arguments after the plan and the outcome, in its order."""
        return self.verdict, self.counters, self.drain_seconds, self.histogram_latency


def _load_config(path: str | None) -> Config:
    try:
        return config_mod.load(path)
    except config_mod.ConfigError as exc:
        raise Failure(f"config: {exc.problems[0]}") from None


def _http_target(target: str) -> str | None:
    """The gateway's base URL, or None for the Redis target."""
    if target == "redis":
        return None
    if not target.startswith(("http://", "https://")):
        raise Failure(f"--target {target!r} must be 'redis' or an http(s):// URL")
    return target


def _plan(opts: dict, cfg: Config, redis_url: str, http_url: str | None) -> tuple[Plan, float]:
    """The checked plan and the --drain-timeout in seconds."""
    options = PlanOptions.from_params(opts, redis_url=redis_url, prefix=cfg.redis.prefix,
                                      shards=cfg.redis.shards,
                                      http_url=http_url)
    try:
        return make_plan(options), parse_duration(opts["drain_timeout"])
    except ValueError as exc:
        raise Failure(str(exc)) from None


def _connect(redis_url: str, given_url: str | None, cfg: Config) -> Redis:
    try:
        return connect(redis_url)
    except RedisUnavailable as exc:
        if given_url or cfg.redis.url:
            raise Failure(str(exc)) from None
        # Neither --redis nor the config names a Redis: it is the farm's own, started with it.
        raise Failure(f"the farm's own Redis ({redis_url}) is not running: start the farm "
                      f"(`farm start`), or give --redis / --config") from None


def _baseline(cfg: Config, plan: Plan) -> _Baseline:
    """What --verify needs before the run: a running farm that can read its Redis, its store,
    and under --profile incident-storm its storm rule."""
    storm_rule = None
    if plan.storm is not None:
        try:
            storm_rule = storm_rule_of(cfg)
        except ValueError as exc:
            raise Failure(str(exc)) from None
    status = fetch_status(cfg)
    if status is None:
        raise Failure(f"--verify needs a running farm, and none answers at "
                      f"{cfg.supervisor.http} (start one with `farm start`, or point "
                      f"--config at its config)")
    if "counters" not in status:
        raise Failure(f"the farm at {cfg.supervisor.http} cannot read its Redis: "
                      f"{status.get('error')}")
    try:
        reader = reader_for(cfg)
    except StoreError as exc:
        raise Failure(str(exc)) from None
    histogram = None if reader.commit_times else latency.scrape(cfg.supervisor.http)
    return _Baseline(status, reader, histogram, storm_rule)


def _refuse_replayed_seed(plan: Plan) -> Callable[[float], None]:
    """The runner's before_start check: a verified run with a pinned epoch must not reuse an
    earlier run's fingerprints, or its first sends could be that run's full duplicates."""

    def check(known: float) -> None:
        if plan.verify and known and plan.epoch_pinned:
            raise runner.RunError(
                f"{known:,.0f} of this seed's fingerprints are already known to the farm "
                f"(an earlier run with --seed {plan.seed} and the same --epoch?): their first "
                f"sends could be full duplicates of that run's; use another --seed or --tenant")

    return check


def _account(plan: Plan, outcome: runner.Outcome, cfg: Config, client: Redis,
             baseline: _Baseline, drain_timeout: float, shown: RichDrain | None) -> _Accounted:
    """--verify after the run: wait for the drain and match what the farm did with what was
    sent. The store reader is closed either way."""
    try:
        verdict, counters, drain_seconds = verify.account(
            plan, outcome, lambda: fetch_status(cfg), baseline.status, client, baseline.reader,
            producer_keys(plan.producers[0]), drain_timeout, shown.update if shown else None,
            baseline.storm_rule)
    except (verify.VerifyError, StoreError, RedisError) as exc:
        raise Failure(f"--verify: {exc}", NOT_DRAINED) from None
    finally:
        if shown is not None:
            shown.stop()
        baseline.reader.close()
    histogram_latency = None
    if not baseline.reader.commit_times:
        histogram_latency = latency.percentiles(baseline.histogram,
                                                latency.scrape(cfg.supervisor.http))
    return _Accounted(verdict, counters, drain_seconds, histogram_latency)


def _observed(plan: Plan, outcome: runner.Outcome, sampler: timeline.Sampler,
              checked: _Accounted | None, path: str | None) -> dict | None:
    """The spike's summary (None unless --profile spike), after writing --timeline FILE."""
    lat = (checked.verdict.latencies, checked.verdict.latency_sent_at) if checked else (None,
                                                                                       None)
    seconds = timeline.rows(sampler.samples, outcome.start, *lat)
    spike = None
    if plan.profile.name == "spike":
        spike = timeline.spike_summary(plan.profile.multiplier, plan.planned, seconds, *lat,
                                       outcome.start)
    if path:
        timeline.write(path, outcome.start, seconds, spike, lat[0])
    return spike


def _print_report(doc: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(doc))
    else:
        report.render(doc, Console())
    if doc["achieved"]["short"]:
        click.echo(f"farm-loadgen: {report.shortfall(doc)}", err=True)


def _exit_code(outcome: runner.Outcome, verdict: verify.Verdict | None, short: bool) -> int:
    """The most serious finding's code: interrupted, loss, wrong incidents, alerts not stored
    for a known reason, or short of the asked rate."""
    if outcome.interrupted:
        return INTERRUPTED
    if verdict is not None and (verdict.loss or verdict.unexpected):
        return LOSS
    if verdict is not None and verdict.incidents is not None and not verdict.incidents.ok:
        return INCIDENTS
    if verdict is not None and (verdict.dead or verdict.refused or verdict.unknown):
        return DEAD
    return SHORT if short else OK


class RichProgress:
    """A progress bar with the current rate and the ETA, on stderr."""

    def __init__(self, console):
        self.console = console
        self.window: collections.deque = collections.deque(maxlen=12)
        self.bar = None

    def started(self, plan) -> None:
        self.plan = plan
        self.bar = Progress(TextColumn("[bold]sending"), BarColumn(),
                            TextColumn("{task.percentage:>3.0f}%"),
                            TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                            console=self.console, transient=True)
        self.bar.start()
        total = plan.duration if plan.duration is not None else plan.total
        self.task = self.bar.add_task("send", total=total, rate="")

    def update(self, elapsed: float, payload: float, alerts: float) -> None:
        now = time.monotonic()
        self.window.append((now, payload, alerts))
        then, p0, a0 = self.window[0]
        span = max(1e-6, now - then)
        rate = (f"{(payload - p0) / span / 1e6:6.2f} MB/s  {(alerts - a0) / span:8,.0f} alerts/s"
                f"  {format_bytes(payload)}")
        if self.plan.duration is not None:
            done = max(0.0, elapsed)
        else:
            done = payload if self.plan.unit == "bytes" else alerts
        self.bar.update(self.task, completed=done, rate=rate)

    def finished(self) -> None:
        if self.bar is not None:
            self.bar.stop()


class RichDrain:
    """A status line while --verify waits for the farm to drain."""

    def __init__(self, console):
        self.status = console.status("waiting for the farm to drain")
        self.status.start()

    def update(self, left: int, received: int) -> None:
        self.status.update(f"waiting for the farm to drain: {left:,} batches left")

    def stop(self) -> None:
        self.status.stop()


def main(argv: list[str] | None = None) -> None:
    """Console script entry point: every error is one line on stderr."""
    try:
        command.main(args=argv, prog_name="farm-loadgen", standalone_mode=False)
    except Failure as exc:
        click.echo(f"farm-loadgen: {exc}", err=True)
        sys.exit(exc.code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"farm-loadgen: {exc.format_message()} (see --help)", err=True)
        sys.exit(USAGE)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("farm-loadgen: interrupted", err=True)
        sys.exit(INTERRUPTED)


if __name__ == "__main__":
    main()
