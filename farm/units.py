"""Quantities in the units people write: sizes ("5GB"), durations ("10m"), rates ("600GB/day")."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
    "t": 1000**4, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}
_TIME_UNITS = {
    "ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400,
    "day": 86400,
}
_COUNT_UNITS = {"": 1, "k": 1000, "m": 1_000_000}
_NUMBER = r"(\d+(?:\.\d+)?)"


def parse_bytes(text: str) -> int:
    """'5GB' -> 5_000_000_000 (decimal units; KiB/MiB/GiB are binary). Raises ValueError."""
    m = re.fullmatch(_NUMBER + r"\s*([a-zA-Z]*)", text.strip())
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"{text!r} is not a size; write for example 5GB, 512MB or 64KiB")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def parse_duration(text: str) -> float:
    """'10m' -> 600.0 seconds; a bare number is seconds. Raises ValueError."""
    m = re.fullmatch(_NUMBER + r"\s*([a-zA-Z]*)", text.strip())
    unit = m.group(2).lower() if m else None
    if not m or (unit and unit not in _TIME_UNITS):
        raise ValueError(f"{text!r} is not a duration; write for example 90s, 10m or 1h")
    return float(m.group(1)) * (_TIME_UNITS[unit] if unit else 1)


@dataclass(frozen=True)
class Rate:
    """A rate either in bytes per second or in alerts per second (exactly one is set)."""

    bytes_per_second: float | None = None
    alerts_per_second: float | None = None

    def __str__(self) -> str:
        if self.bytes_per_second is not None:
            return f"{self.bytes_per_second / 1e6:.2f} MB/s"
        return f"{self.alerts_per_second:,.0f} alerts/s"


def parse_rate(text: str) -> Rate:
    """'600GB/day', '20MB/s' (bytes) or '50k/s' (alerts). Raises ValueError."""
    body, sep, per = text.strip().partition("/")
    if not sep or per.strip().lower() not in _TIME_UNITS:
        raise ValueError(f"{text!r} is not a rate; write for example 600GB/day, 20MB/s or 50k/s")
    seconds = _TIME_UNITS[per.strip().lower()]
    m = re.fullmatch(_NUMBER + r"\s*([a-zA-Z]*)", body.strip())
    if not m:
        raise ValueError(f"{text!r} is not a rate; write for example 600GB/day, 20MB/s or 50k/s")
    number, unit = float(m.group(1)), m.group(2).lower()
    if unit in _COUNT_UNITS and "b" not in unit:
        return Rate(alerts_per_second=number * _COUNT_UNITS[unit] / seconds)
    if unit in _SIZE_UNITS:
        return Rate(bytes_per_second=number * _SIZE_UNITS[unit] / seconds)
    raise ValueError(f"{text!r}: unknown unit {unit!r}; use B/KB/MB/GB/TB for volume or k/M "
                     f"for alerts")


def parse_request_rate(text: str) -> float:
    """'2000/s' or '120000/min' -> requests per second. Raises ValueError."""
    rate = parse_rate(text)
    if rate.alerts_per_second is None:
        raise ValueError(f"{text!r} is a volume; a request rate is a count, like 2000/s")
    return rate.alerts_per_second


def parse_amount(text: str) -> tuple[float, str]:
    """An amount of traffic: '5GB' -> (5e9, 'bytes'); '2M alerts' or '500k alerts' ->
    (2e6, 'alerts'). Raises ValueError."""
    m = re.fullmatch(_NUMBER + r"\s*([kKmM]?)\s*alerts?", text.strip())
    if m:
        return float(m.group(1)) * _COUNT_UNITS[m.group(2).lower()], "alerts"
    try:
        return float(parse_bytes(text)), "bytes"
    except ValueError:
        raise ValueError(f"{text!r} is not an amount; write for example 5GB, 512MB or "
                         f"2M alerts") from None


def format_bytes(n: float) -> str:
    """1234567 -> '1.23 MB' (decimal units, as parse_bytes reads them)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f} B"
