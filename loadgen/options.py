"""The run's options, checked, and the per-producer specs derived from them. Every problem is a
ValueError with one line that names the option and says what is allowed."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import datetime

from farm.units import Rate, parse_amount, parse_bytes, parse_duration, parse_rate
from farm.wire import PROVIDERS
from loadgen.population import PopulationSpec
from loadgen.producer_spec import HttpSpec, ProducerSpec
from loadgen.profiles import PROFILES, Profile
from loadgen.providers import Shape
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


def make_plan(*, rate: str | None, duration: str | None, total: str | None, mix: str,
              profile: str, seed: int | None, epoch: str | None, fingerprints: int,
              repeat: str, flap: str, labels: str, label_values: int, size_median: str,
              size_max: str, producers: int, batch_events: int, batch_bytes: str,
              batch_wait: str, tenant: str, redis_url: str | None, prefix: str,
              http_url: str | None, api_key: str | None, concurrency: int,
              max_backlog: str, verify: bool) -> Plan:
    """Check every option and derive the producers' specs. Raises ValueError (one line)."""
    chosen = PROFILES.get(profile)
    if chosen is None:
        raise ValueError(f"--profile: {profile!r} is not a profile; choose one of "
                         f"{', '.join(PROFILES)}")
    if (duration is None) == (total is None):
        raise ValueError("give exactly one of --duration (like 60s or 10m) and --total "
                         "(like 5GB or 2M alerts)")
    parsed_rate = parse_rate(rate) if rate is not None else None
    if parsed_rate is None and chosen.name != "max":
        raise ValueError("--rate is required (like 600GB/day, 20MB/s or 50k/s) unless "
                         "--profile max")
    if parsed_rate is not None:
        value = parsed_rate.bytes_per_second or parsed_rate.alerts_per_second
        if not value or value <= 0:
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
    base = (parsed_rate.bytes_per_second or parsed_rate.alerts_per_second
            if parsed_rate is not None else None)
    nominal = base or (NOMINAL_BYTES_PER_SECOND if unit == "bytes"
                       else NOMINAL_BYTES_PER_SECOND / BYTES_PER_ALERT_ESTIMATE)
    planned = seconds if seconds is not None else amount / (nominal * chosen.mean)
    if producers < 1 or producers > 64:
        raise ValueError(f"--producers {producers} must be between 1 and 64")
    if fingerprints < 1 or fingerprints > 10_000_000:
        raise ValueError(f"--fingerprints {fingerprints} must be between 1 and 10,000,000")
    repeat_ratio, flap_ratio = ratio(repeat, "--repeat"), ratio(flap, "--flap")
    if repeat_ratio + flap_ratio > 1:
        raise ValueError(f"--repeat {repeat_ratio:g} plus --flap {flap_ratio:g} must not "
                         f"exceed 1")
    shape = Shape(labels=parse_range(labels, "--labels"), label_values=max(1, label_values))
    median, largest = parse_bytes(size_median), parse_bytes(size_max)
    if not 64 <= median <= largest:
        raise ValueError(f"--size-median {size_median} must be at least 64 bytes and at most "
                         f"--size-max {size_max}")
    if batch_events < 1:
        raise ValueError("--batch-events must be at least 1")
    if concurrency < 1:
        raise ValueError(f"--concurrency {concurrency} must be at least 1 (requests in flight "
                         f"per producer)")
    if verify:
        if seconds is not None and chosen.name == "max":
            estimate = (seconds * MAX_PRODUCER_BYTES_PER_SECOND * producers
                        / BYTES_PER_ALERT_ESTIMATE)
        else:
            estimate = (amount if amount is not None else base * chosen.mean * seconds)
            if unit == "bytes":
                estimate /= BYTES_PER_ALERT_ESTIMATE
        if estimate > MAX_VERIFIED_ALERTS:
            raise ValueError(f"--verify tracks every alert (about 9 bytes each) and is limited "
                             f"to {MAX_VERIFIED_ALERTS:,} alerts; this run could send more. "
                             f"Shorten it, or give --profile max a --total")
    mix_weights = parse_mix(mix)
    seed = secrets.randbelow(2**31) if seed is None else seed
    run_id = secrets.token_hex(8)
    epoch_value = parse_epoch(epoch) if epoch is not None else None
    population = PopulationSpec(seed=seed, fingerprints=fingerprints, mix=mix_weights,
                                shape=shape, size_median=median, size_max=largest,
                                encoding="json" if http_url else "msgpack")
    http = HttpSpec(http_url, api_key, concurrency) if http_url else None
    specs = []
    for index in range(producers):
        stream = StreamSpec(seed=seed, repeat=repeat_ratio, flap=flap_ratio,
                            epoch=epoch_value,
                            unit=unit, rate=nominal / producers, profile=chosen,
                            planned=planned)
        specs.append(ProducerSpec(
            run_id=run_id, producer=index, producers=producers, population=population,
            stream=stream, tenant=tenant, redis_url=redis_url, prefix=prefix, http=http,
            batch_events=batch_events, batch_bytes=parse_bytes(batch_bytes),
            batch_wait=parse_duration(batch_wait), duration=seconds,
            total=amount / producers if amount is not None else None,
            max_backlog=parse_bytes(max_backlog), record=verify))
    return Plan(run_id=run_id, seed=seed, epoch=epoch_value or 0.0,
                epoch_pinned=epoch_value is not None, rate=parsed_rate, unit=unit,
                profile=chosen, duration=seconds, total=amount, planned=planned,
                mix=mix_weights, producers=specs, verify=verify,
                target=http_url or "redis")
