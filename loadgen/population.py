"""The alert population of one producer: every alert group it will send, pre-encoded.

Each group is built from its own Random, seeded by (seed, producer, provider, index), so a
producer's population is a pure function of the seed and the options. Groups are encoded once
per status (firing, resolved) as templates; the stream (loadgen/stream.py) only stamps them.
Payload size: each group draws a target JSON size from a log-normal distribution (median
`size_median`, long tail, capped at `size_max`) and pads its free-text fields to reach it; a
group whose fields alone are larger stays larger.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

import msgpack
import orjson

from loadgen.providers import GROUPS
from loadgen.providers.group import Identity, Shape
from loadgen.templates import Template

# The size distribution: log-normal, its median a little under the asked one because groups
# whose own fields are larger than their draw stay larger (most single-alert webhooks are
# already near 1 KiB); sigma puts about 2% of payloads above 16x the median.
SIZE_SIGMA = 1.5
SIZE_MEDIAN_SCALE = 0.6
INDEX_BITS = 27            # groups per producer < 2**27
STORM_INDEX = (1 << INDEX_BITS) - 1
MEMBER_SHIFT = 34          # alert key = index << 37 | member << 34 | version
INDEX_SHIFT = 37


@dataclass(frozen=True)
class PopulationSpec:
    """What to build: the share of `fingerprints` for this producer, by provider weight."""

    seed: int
    fingerprints: int
    mix: dict[str, float]
    shape: Shape
    size_median: int = 1024
    size_max: int = 64 * 1024
    encoding: str = "msgpack"          # 'msgpack' (Redis target) or 'json' (HTTP target)


class Group:
    """One alert group at run time: its templates and the state of its current version."""

    __slots__ = ("index", "provider", "lane", "alerts", "event_alerts", "fingerprints",
                 "templates", "sizes", "new_id_on_resolve", "status", "version", "start",
                 "resolved", "event_id", "last_send", "current", "size", "keys")

    def __init__(self, index: int, blueprint, templates: dict, sizes: dict):
        self.index = index
        self.provider = blueprint.provider
        self.lane = "critical" if "critical" in blueprint.severities else "normal"
        self.fingerprints = tuple(blueprint.fingerprints)
        self.alerts = len(self.fingerprints)
        events = blueprint.events(blueprint.body("firing", 0))
        # Alerts each wire event yields: an Alertmanager/Grafana webhook yields all of its
        # alerts, a Keep list item one.
        self.event_alerts = (1,) * len(events) if len(events) > 1 else (self.alerts,)
        self.templates = templates
        self.sizes = sizes
        self.new_id_on_resolve = getattr(blueprint, "new_id_on_resolve", True)
        self.status = ""
        self.version = -1
        self.start = 0.0
        self.resolved = 0.0
        self.event_id = 0
        self.last_send = -(1 << 40)
        self.current: tuple[bytes, ...] = ()
        self.size = 0
        self.keys: tuple[int, ...] = ()


def salt_of(seed: int, producer: int) -> int:
    """10 bits that keep identities of different producers (and, mostly, seeds) apart."""
    return (int(hashlib.sha256(str(seed).encode()).hexdigest()[:8], 16) + producer) & 0x3FF


def _encode(blueprint, status: str, pad: int, encoding: str) -> tuple[tuple[Template, ...], int]:
    body = blueprint.body(status, pad)
    size = len(orjson.dumps(body))
    if encoding == "json":
        return (Template(orjson.dumps(body)),), size
    return tuple(Template(msgpack.packb(event)) for event in blueprint.events(body)), size


def build_group(spec: PopulationSpec, provider: str, producer: int, index: int,
                shape: Shape | None = None) -> Group:
    """Group `index` of `producer`: deterministic in (seed, producer, provider, index)."""
    rng = random.Random(f"{spec.seed}:{producer}:{provider}:{index}")
    ident = Identity((salt_of(spec.seed, producer) << INDEX_BITS) | index)
    blueprint = GROUPS[provider](rng, ident, shape or spec.shape)
    return group_of(spec, rng, blueprint, index)


def group_of(spec: PopulationSpec, rng: random.Random, blueprint, index: int) -> Group:
    """A blueprint's run-time group: its payload size drawn from `rng`, encoded per status."""
    target = min(spec.size_max,
                 int(rng.lognormvariate(math.log(spec.size_median * SIZE_MEDIAN_SCALE),
                                             SIZE_SIGMA)))
    base = len(orjson.dumps(blueprint.body("firing", 0)))
    pad = max(0, target - base)
    templates, sizes = {}, {}
    for status in ("firing", "resolved"):
        templates[status], sizes[status] = _encode(blueprint, status, pad, spec.encoding)
        # Filler newlines are escaped in JSON; trim the pad until the cap holds.
        while sizes[status] > spec.size_max and pad > 0:
            pad = max(0, pad - (sizes[status] - spec.size_max))
            templates[status], sizes[status] = _encode(blueprint, status, pad, spec.encoding)
    return Group(index, blueprint, templates, sizes)


def producer_share(total: int, producer: int, producers: int) -> int:
    return total // producers + (1 if producer < total % producers else 0)


def build_population(spec: PopulationSpec, producer: int, producers: int) -> dict[str, list]:
    """Provider -> groups of this producer, holding its share of the fingerprints split by the
    mix weights (at least one group per provider in the mix). Fingerprints are unique within
    the run; a collision (impossible by construction) raises RuntimeError."""
    share = producer_share(spec.fingerprints, producer, producers)
    weight_sum = sum(spec.mix.values())
    out: dict[str, list] = {}
    seen: set[str] = set()
    index = 0
    for provider, weight in spec.mix.items():
        want = max(1, round(share * weight / weight_sum))
        groups, have = [], 0
        while have < want:
            group = build_group(spec, provider, producer, index)
            index += 1
            for fp in group.fingerprints:
                if fp in seen:
                    raise RuntimeError(f"fingerprint collision on {fp} ({provider})")
                seen.add(fp)
            groups.append(group)
            have += group.alerts
        out[provider] = groups
    return out


def build_storm_group(spec: PopulationSpec, producers: int) -> Group:
    """The one alert a storm re-sends: the same for every producer (built from the seed with a
    salt no producer uses), a single alert of the mix's first provider."""
    provider = "prometheus" if "prometheus" in spec.mix else next(iter(spec.mix))
    one = Shape(members=(1, 1), labels=spec.shape.labels, label_values=spec.shape.label_values)
    group = build_group(spec, provider, producers, 0, shape=one)
    group.index = STORM_INDEX
    return group
