"""The incident storm (`--profile incident-storm`): N hosts with M alerts each fire and resolve
in waves on top of the normal mix, so that correlation rules group them into incidents
(configs/correlation/storm.toml) and `--verify` can say which incidents must exist.

Every storm alert is a single-alert Alertmanager notification labelled `host` (its host) and
`loadgen = "incident-storm"` (what the storm rule matches). Host names and fingerprints derive
from a tag of (seed, epoch), so a run's storm never joins an earlier run's incidents, and the
same seed and epoch give the same bytes.

A run of `planned` seconds has `waves` waves of L = planned / waves seconds of the payload
clock. In wave w, every alert fires once during [wL, wL + 0.35L) and resolves once during
[wL + 0.5L, wL + 0.85L), in an order shuffled per wave; the quiet 15% after each phase keeps a
host's resolves and its next fires in different batches, decided in order. Alert j of host h is
group index FIRST_INDEX + h * alerts + j; its version 2w fires in wave w and 2w + 1 resolves
it, so the send log alone says which alert did what in which wave (loadgen/incidents.py).
Producer p sends the hosts h with h % producers == p: a host's alerts keep their order.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from loadgen.population import Group, PopulationSpec, group_of
from loadgen.providers import prometheus
from loadgen.providers.group import Identity, Shape

RULE_NAME = "loadgen incident storm"     # the rule in configs/correlation/storm.toml
MARK = "incident-storm"                  # the `loadgen` label the rule's condition matches
FIRST_INDEX = 1 << 26                    # group indices of storm alerts (above any population)
FIRE, QUIET, RESOLVE = 0.35, 0.5, 0.85   # phase bounds as fractions of a wave
SEVERITIES = ("high", "warning", "info")  # never critical: one lane, one order per host
MIN_WAVE_SECONDS = 2.0
MAX_HOSTS, MAX_ALERTS = 10_000, 1_000


@dataclass(frozen=True)
class StormSpec:
    hosts: int = 50
    alerts: int = 20            # per host
    waves: int = 10             # over the planned run


def tag_of(seed: int, epoch: float) -> str:
    """8 hex digits naming one run's storm: its hosts and fingerprints."""
    return hashlib.sha256(f"incident-storm:{seed}:{epoch:.3f}".encode()).hexdigest()[:8]


def host_name(tag: str, host: int) -> str:
    return f"storm-{tag}-h{host:04d}"


def fingerprint(tag: str, host: int, alert: int) -> str:
    return hashlib.sha256(f"{tag}:{host}:{alert}".encode()).hexdigest()[:16]


def where(index: int, alerts: int) -> tuple[int, int] | None:
    """(host, alert) of a storm group index, or None for any other group."""
    if index < FIRST_INDEX:
        return None
    return divmod(index - FIRST_INDEX, alerts)


def build_alert(population: PopulationSpec, tag: str, host: int, alert: int,
                alerts: int) -> Group:
    """Storm alert `alert` of `host`: a one-alert Alertmanager group of the run's population
    options, relabelled as the storm's."""
    rng = random.Random(f"{population.seed}:storm:{host}:{alert}")
    shape = Shape(members=(1, 1), labels=population.shape.labels,
                  label_values=population.shape.label_values)
    blueprint = prometheus.Group(rng, Identity(0), shape)
    severity = SEVERITIES[rng.randrange(len(SEVERITIES))]
    name = host_name(tag, host)
    item = blueprint.alerts[0]
    item["fingerprint"] = fingerprint(tag, host, alert)
    item["labels"] = {**item["labels"], "host": name, "loadgen": MARK,
                      "instance": f"{name}:9100",
                      "severity": prometheus.LABEL_SEVERITY[severity]}
    item["summary"] = f"{blueprint.alertname} on {name}"
    blueprint.common_labels = dict(item["labels"])
    blueprint.fingerprints = [item["fingerprint"]]
    blueprint.severities = [severity]
    return group_of(population, rng, blueprint, FIRST_INDEX + host * alerts + alert)


class StormTraffic:
    """One producer's share of the storm: its alerts and, wave by wave, when each is due."""

    def __init__(self, spec: StormSpec, population: PopulationSpec, epoch: float,
                 planned: float, producer: int, producers: int):
        self.spec = spec
        self.tag = tag_of(population.seed, epoch)
        self.seed = population.seed
        self.wave_seconds = planned / spec.waves
        self.hosts = [h for h in range(spec.hosts) if h % producers == producer]
        self.groups = {h * spec.alerts + a: build_alert(population, self.tag, h, a, spec.alerts)
                       for h in self.hosts for a in range(spec.alerts)}
        self.wave = -1
        self.due: list[tuple[float, int, bool]] = []   # (logical time, alert, fires)
        self.next = 0

    def pop_due(self, t: float) -> tuple[Group, bool] | None:
        """The storm alert due at logical time t, if any, and whether it fires (else it
        resolves)."""
        if self.next >= len(self.due):
            wave = int(t // self.wave_seconds)
            if wave <= self.wave or wave >= self.spec.waves or not self.groups:
                return None
            self._plan(wave)
        at, alert, fires = self.due[self.next]
        if at > t:
            return None
        self.next += 1
        return self.groups[alert], fires

    def _plan(self, wave: int) -> None:
        """This producer's sends of `wave`: the whole storm shuffled per phase, spread evenly
        over the phase, keeping its own alerts."""
        everyone = self.spec.hosts * self.spec.alerts
        start = wave * self.wave_seconds
        due = []
        for phase, (begin, end) in enumerate(((0.0, FIRE), (QUIET, RESOLVE))):
            order = list(range(everyone))
            random.Random(f"{self.seed}:storm:{wave}:{phase}").shuffle(order)
            span = (end - begin) * self.wave_seconds
            for rank, alert in enumerate(order):
                if alert in self.groups:
                    at = start + begin * self.wave_seconds + span * rank / everyone
                    due.append((at, alert, phase == 0))
        due.sort(key=lambda d: d[0])
        self.due, self.next, self.wave = due, 0, wave


def check(spec: StormSpec, planned: float) -> None:
    """Raises ValueError, one line naming the option, when the storm cannot run as asked."""
    if not 1 <= spec.hosts <= MAX_HOSTS:
        raise ValueError(f"--storm-hosts {spec.hosts} must be between 1 and {MAX_HOSTS:,}")
    if not 1 <= spec.alerts <= MAX_ALERTS:
        raise ValueError(f"--storm-alerts {spec.alerts} must be between 1 and {MAX_ALERTS:,}")
    if spec.waves < 1:
        raise ValueError(f"--storm-waves {spec.waves} must be at least 1")
    if planned / spec.waves < MIN_WAVE_SECONDS:
        raise ValueError(f"--storm-waves {spec.waves}: waves of {planned / spec.waves:.2f} s "
                         f"are too short (at least {MIN_WAVE_SECONDS:g} s each, so a host's "
                         f"resolves and next fires are decided in order); use fewer waves")


def fire_phase_seconds(planned: float, spec: StormSpec) -> float:
    """The longest a host's fires of one wave are spread over."""
    return FIRE * planned / spec.waves
