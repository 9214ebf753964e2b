"""What every provider's alert group is built from: its run-unique Identity, the population's
Shape, and the draws every provider makes (alerts per notification, severity)."""

from __future__ import annotations

import random
from dataclasses import dataclass

M40 = (1 << 40) - 1
M64 = (1 << 64) - 1

# Canonical severities and how often each occurs.
SEVERITIES = ("critical", "high", "warning", "info", "low")
SEVERITY_WEIGHTS = (10, 15, 40, 30, 5)


def mix40(x: int) -> int:
    """A bijection on 40-bit ints that looks random: unique inputs give unique outputs."""
    x = (x * 0x9E3779B97F) & M40
    x ^= x >> 17
    x = (x * 0xC2B2AE3D27) & M40
    return x ^ (x >> 19)


def mix64(x: int) -> int:
    """A bijection on 64-bit ints (splitmix64's finaliser)."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


@dataclass(frozen=True)
class Identity:
    """A run-unique number for one alert group: 10 bits of salt (seed and producer), 27 bits
    of group index. Everything that must be unique (hosts, fingerprints) derives from it."""

    uid: int

    def token(self, member: int = 0) -> str:
        """10 hex digits, unique per (group, member) within a run."""
        return f"{mix40((self.uid << 3) | member):010x}"

    def hex16(self, member: int = 0) -> str:
        """16 hex digits, unique per (group, member) within a run (Alertmanager-style)."""
        return f"{mix64((self.uid << 3) | member):016x}"


@dataclass(frozen=True)
class Shape:
    """What the population looks like: alerts per notification, labels per alert, and how
    many distinct values each label key takes (label cardinality)."""

    members: tuple[int, int] | None = None   # None: the provider's own default range
    labels: tuple[int, int] = (1, 6)
    label_values: int = 1000


def pick_severity(rng: random.Random) -> str:
    return rng.choices(SEVERITIES, SEVERITY_WEIGHTS)[0]


def members(rng: random.Random, shape: Shape, default: tuple[int, int]) -> int:
    """Alerts in one notification: most notifications carry one, fewer carry more (each
    extra alert half as likely as one fewer)."""
    low, high = shape.members or default
    count = low
    while count < high and rng.random() < 0.3:
        count += 1
    return count
