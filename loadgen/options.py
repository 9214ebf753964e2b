"""The run's options, checked, and the per-producer specs derived from them. Every problem is a
ValueError with one line that names the option and says what is allowed."""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from farm.units import Rate, parse_amount, parse_bytes, parse_duration, parse_rate
from farm.wire import PROVIDERS
from loadgen import storm as storm_mod
from loadgen.population import PopulationSpec
from loadgen.producer_spec import HttpSpec, ProducerSpec
from loadgen.profiles import PROFILES, Profile, parse_spike
from loadgen.providers.group import Shape
from loadgen.stream import StreamSpec

DEFAULT_MIX = "prometheus:60,grafana:20,datadog:10,zabbix:5,keep:5"
# The clock written into payloads under --profile max without --rate.
NOMINAL_BYTES_PER_SECOND = 10e6
# --verify keeps 8-9 bytes per alert; past this many it refuses to start.
MAX_VERIFIED_ALERTS = 100_000_000
BYTES_PER_ALERT_ESTIMATE = 600
# What one producer can push at most (bench/loadgen.py), to bound a --profile max run.
MAX_PRODUCER_BYTES_PER_SECOND = 200e6


def parse_mix(text: str) -> dict[str, float]:
    """'prometheus:60,grafana:20' -> {'prometheus': 60.0, 'grafana': 20.0}."""
    mix: dict[str, float] = {}
    for part in text.split(","):
        name, sep, weight = part.strip().partition(":")
        name = name.strip()
        if name not in PROVIDERS:
            raise ValueError(f"--mix: unknown provider {name!r}; known: {', '.join(PROVIDERS)}")
        try:
            value = float(weight) if sep else 1.0
        except ValueError:
            raise ValueError(f"--mix: weight of {name} must be a number, got {weight!r}") from None
        if value < 0 or not math.isfinite(value):
            raise ValueError(f"--mix: weight of {name} must be zero or more, got {weight!r}")
        if value:
            mix[name] = mix.get(name, 0.0) + value
    if not mix:
        raise ValueError(f"--mix needs at least one provider with a weight above 0, "
                         f"like {DEFAULT_MIX}")
    return mix


def parse_range(text: str, option: str) -> tuple[int, int]:
    """'2-8' -> (2, 8); '4' -> (4, 4)."""
    low, sep, high = text.partition("-")
    try:
        pair = (int(low), int(high) if sep else int(low))
    except ValueError:
        raise ValueError(f"{option}: {text!r} is not a count or a range like 2-8") from None
    if pair[0] < 0 or pair[1] < pair[0]:
        raise ValueError(f"{option}: {text!r} must be LOW-HIGH with 0 <= LOW <= HIGH")
    return pair


def parse_epoch(text: str) -> float:
    """Unix seconds, or an ISO 8601 time (UTC unless it says otherwise)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--epoch: {text!r} is neither unix seconds nor an ISO 8601 time "
                         f"like 2026-01-01T00:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.now().astimezone().tzinfo).astimezone()
    return moment.timestamp()


def ratio(text: str, option: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{option}: {text!r} is not a number between 0 and 1") from None
    if not 0 <= value <= 1:
        raise ValueError(f"{option}: {value:g} must be between 0 and 1")
    return value


@dataclass(frozen=True)
class PlanOptions:
    """The run's options as given (text as typed, not yet checked), with the farm-loadgen
    defaults; make_plan checks them. The field names are those of farm-loadgen's options."""

    rate: str | None = None            # like 600GB/day, 20MB/s or 50k/s; None only for max
    duration: str | None = None        # exactly one of duration and total
    total: str | None = None
    mix: str = DEFAULT_MIX
    profile: str = "steady"
    spike: str | None = None           # like 10x:30s: the spike profile's factor and length
    seed: int | None = None            # None: a random one
    epoch: str | None = None           # None: the run's start
    fingerprints: int = 10_000
    repeat: str = "0.3"
    flap: str = "0.1"
    labels: str = "1-6"
    label_values: int = 1000
    size_median: str = "1KiB"
    size_max: str = "64KiB"
    producers: int = 1
    batch_events: int = 200
    batch_bytes: str = "256KiB"
    batch_wait: str = "100ms"
    tenant: str = "default"
    concurrency: int = 128
    max_backlog: str = "1GB"
    verify: bool = False
    storm_hosts: int = storm_mod.StormSpec.hosts      # --profile incident-storm
    storm_alerts: int = storm_mod.StormSpec.alerts
    storm_waves: int = storm_mod.StormSpec.waves
    # Where to send: the farm's Redis and key prefix, or the gateway's base URL and API key.
    redis_url: str | None = None
    prefix: str = "farm"
    shards: int = 0
    http_url: str | None = None
    api_key: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any], **given: Any) -> PlanOptions:
        """Built from click's parameters (those named like a field), with `given` fields
        taking precedence (what the CLI derives, like the Redis URL from the config)."""
        chosen = {f.name: params[f.name] for f in fields(cls)
                  if f.name in params and f.name not in given}
        return cls(**chosen, **given)


# farm-loadgen's option defaults: the CLI declares its options with these.
DEFAULTS = PlanOptions()


@dataclass(frozen=True)
class Plan:
    """Everything a run needs, derived from the options."""

    run_id: str
    seed: int
    epoch: float
    epoch_pinned: bool
    rate: Rate | None
    unit: str                  # 'bytes' or 'alerts'
    profile: Profile
    duration: float | None
    total: float | None        # in `unit`
    planned: float             # planned seconds
    mix: dict[str, float]
    producers: list[ProducerSpec]
    verify: bool
    target: str                # 'redis' or the HTTP base URL
    storm: storm_mod.StormSpec | None = None    # --profile incident-storm


def make_plan(options: PlanOptions) -> Plan:
    """Check every option and derive the producers' specs. Raises ValueError: one line naming
    the first option that is wrong and what it allows."""
    profile = _profile(options.profile)
    volume = _volume(options, profile)
    if options.spike is not None:
        profile = _spike_profile(options, volume)
    _check_counts(options)
    repeat, flap = _duplicate_shares(options)
    shape = Shape(labels=parse_range(options.labels, "--labels"),
                  label_values=max(1, options.label_values))
    median, largest = _payload_sizes(options)
    _check_batching(options)
    if options.verify:
        _check_verifiable(options, volume, profile)
    mix = parse_mix(options.mix)
    storm = None
    if profile.name == "incident-storm":
        storm = storm_mod.StormSpec(options.storm_hosts, options.storm_alerts,
                                    options.storm_waves)
        storm_mod.check(storm, volume.planned)
    seed = secrets.randbelow(2**31) if options.seed is None else options.seed
    run_id = secrets.token_hex(8)
    epoch = parse_epoch(options.epoch) if options.epoch is not None else None
    population = PopulationSpec(seed=seed, fingerprints=options.fingerprints, mix=mix,
                                shape=shape, size_median=median, size_max=largest,
                                encoding="json" if options.http_url else "msgpack")
    # One stream spec serves every producer: each runs at its share of the rate.
    stream = StreamSpec(seed=seed, repeat=repeat, flap=flap, epoch=epoch, unit=volume.unit,
                        rate=volume.nominal / options.producers, profile=profile,
                        planned=volume.planned, storm=storm)
    return Plan(run_id=run_id, seed=seed, epoch=epoch or 0.0, epoch_pinned=epoch is not None,
                rate=volume.rate, unit=volume.unit, profile=profile, duration=volume.seconds,
                total=volume.amount, planned=volume.planned, mix=mix,
                producers=_producer_specs(options, run_id, population, stream, volume),
                verify=options.verify, target=options.http_url or "redis", storm=storm)


@dataclass(frozen=True)
class _Volume:
    """How much the run sends, checked: at what rate, in which unit, for how long."""

    rate: Rate | None          # as asked; None for --profile max without --rate
    unit: str                  # 'bytes' or 'alerts'
    seconds: float | None      # --duration
    amount: float | None       # --total, in `unit`
    asked: float | None        # the asked rate in `unit` per second
    nominal: float             # the payload clock's rate in `unit` per second
    planned: float             # planned seconds


def _profile(name: str) -> Profile:
    chosen = PROFILES.get(name)
    if chosen is None:
        raise ValueError(f"--profile: {name!r} is not a profile; choose one of "
                         f"{', '.join(PROFILES)}")
    return chosen


def _spike_profile(options: PlanOptions, volume: _Volume) -> Profile:
    """--spike: the spike profile with the asked factor and length (it needs --duration)."""
    if options.profile not in ("steady", "spike"):
        raise ValueError(f"--spike shapes the spike profile; it cannot go with --profile "
                         f"{options.profile}")
    if volume.seconds is None:
        raise ValueError("--spike needs --duration (the spike is placed within the run)")
    return parse_spike(options.spike, volume.seconds)


def _volume(options: PlanOptions, profile: Profile) -> _Volume:
    """--rate with --duration or --total, checked against each other."""
    rate, duration, total = options.rate, options.duration, options.total
    if (duration is None) == (total is None):
        raise ValueError("give exactly one of --duration (like 60s or 10m) and --total "
                         "(like 5GB or 2M alerts)")
    parsed_rate = parse_rate(rate) if rate is not None else None
    if parsed_rate is None and profile.name != "max":
        raise ValueError("--rate is required (like 600GB/day, 20MB/s or 50k/s) unless "
                         "--profile max")
    asked = None
    if parsed_rate is not None:
        asked = parsed_rate.bytes_per_second or parsed_rate.alerts_per_second
        if not asked or asked <= 0:
            raise ValueError(f"--rate {rate!r} must be above zero")
    unit = "alerts" if parsed_rate is not None and parsed_rate.alerts_per_second else "bytes"
    seconds = parse_duration(duration) if duration is not None else None
    if seconds is not None and seconds <= 0:
        raise ValueError(f"--duration {duration!r} must be above zero")
    amount = None
    if total is not None:
        amount, total_unit = parse_amount(total)
        if amount <= 0:
            raise ValueError(f"--total {total!r} must be above zero")
        if parsed_rate is not None and total_unit != unit:
            raise ValueError(f"--total {total!r} counts {total_unit} but --rate {rate!r} "
                             f"counts {unit}; use the same kind")
        unit = total_unit
    nominal = asked or (NOMINAL_BYTES_PER_SECOND if unit == "bytes"
                        else NOMINAL_BYTES_PER_SECOND / BYTES_PER_ALERT_ESTIMATE)
    planned = seconds if seconds is not None else amount / (nominal * profile.mean)
    return _Volume(rate=parsed_rate, unit=unit, seconds=seconds, amount=amount, asked=asked,
                   nominal=nominal, planned=planned)


def _check_counts(options: PlanOptions) -> None:
    if options.producers < 1 or options.producers > 64:
        raise ValueError(f"--producers {options.producers} must be between 1 and 64")
    if options.fingerprints < 1 or options.fingerprints > 10_000_000:
        raise ValueError(f"--fingerprints {options.fingerprints} must be between 1 and "
                         f"10,000,000")


def _duplicate_shares(options: PlanOptions) -> tuple[float, float]:
    """(--repeat, --flap): shares of notifications, together at most all of them."""
    repeat, flap = ratio(options.repeat, "--repeat"), ratio(options.flap, "--flap")
    if repeat + flap > 1:
        raise ValueError(f"--repeat {repeat:g} plus --flap {flap:g} must not exceed 1")
    return repeat, flap


def _payload_sizes(options: PlanOptions) -> tuple[int, int]:
    """(median, largest) payload bytes."""
    median, largest = parse_bytes(options.size_median), parse_bytes(options.size_max)
    if not 64 <= median <= largest:
        raise ValueError(f"--size-median {options.size_median} must be at least 64 bytes and "
                         f"at most --size-max {options.size_max}")
    return median, largest


def _check_batching(options: PlanOptions) -> None:
    if options.batch_events < 1:
        raise ValueError("--batch-events must be at least 1")
    if options.concurrency < 1:
        raise ValueError(f"--concurrency {options.concurrency} must be at least 1 (requests "
                         f"in flight per producer)")


def _check_verifiable(options: PlanOptions, volume: _Volume, profile: Profile) -> None:
    """--verify keeps a few bytes per alert sent: refuse a run that could send too many."""
    if volume.seconds is not None and profile.name == "max":
        estimate = (volume.seconds * MAX_PRODUCER_BYTES_PER_SECOND * options.producers
                    / BYTES_PER_ALERT_ESTIMATE)
    else:
        estimate = (volume.amount if volume.amount is not None
                    else volume.asked * profile.mean * volume.seconds)
        if volume.unit == "bytes":
            estimate /= BYTES_PER_ALERT_ESTIMATE
    if estimate > MAX_VERIFIED_ALERTS:
        raise ValueError(f"--verify tracks every alert (about 9 bytes each) and is limited "
                         f"to {MAX_VERIFIED_ALERTS:,} alerts; this run could send more. "
                         f"Shorten it, or give --profile max a --total")


def _producer_specs(options: PlanOptions, run_id: str, population: PopulationSpec,
                    stream: StreamSpec, volume: _Volume) -> list[ProducerSpec]:
    http = (HttpSpec(options.http_url, options.api_key, options.concurrency)
            if options.http_url else None)
    batch_bytes, batch_wait = parse_bytes(options.batch_bytes), parse_duration(options.batch_wait)
    max_backlog = parse_bytes(options.max_backlog)
    share = volume.amount / options.producers if volume.amount is not None else None
    return [ProducerSpec(run_id=run_id, producer=index, producers=options.producers,
                         population=population, stream=stream, tenant=options.tenant,
                         redis_url=options.redis_url, prefix=options.prefix, http=http,
                         batch_events=options.batch_events, batch_bytes=batch_bytes,
                         batch_wait=batch_wait, duration=volume.seconds, total=share,
                         max_backlog=max_backlog, record=options.verify,
                         shards=options.shards)
            for index in range(options.producers)]
