"""The send stream of one producer: which alert group notifies next, and with what content.

A pure function of (seed, producer, options, epoch): nothing here reads the wall clock, so the
same seed gives the same notifications byte for byte, however fast they are pushed. Each send is
one of:

- first:  a group's first episode in this run (its alerts are new to the farm);
- new:    the next group of the population starts a new firing episode (a new startsAt, so
          a new version: partial duplicates once the population has been gone through);
- flap:   a recently active group flips firing <-> resolved (a new version: partial);
- repeat: a recently active group's last notification again, byte for byte (Keep's rules make
          every alert in it a full duplicate).

Versions of an alert never repeat earlier content (every episode has its own start stamp), so
the copies of one version are always consecutive in the stream: the verifier relies on that.
A version change waits until the group has been quiet for `guard` sends, so that two workers
deciding neighbouring batches in either order rarely see an old copy after a new version.

The logical clock `t` advances by each send's share of the asked rate under the profile; it is
the schedule the pacer follows and the time written into payloads (epoch + t).
"""

from __future__ import annotations

import bisect
import collections
import random
from dataclasses import dataclass

import xxhash

from loadgen.population import INDEX_SHIFT, MEMBER_SHIFT, Group, salt_of
from loadgen.profiles import BURST, SLICE, Profile
from loadgen.storm import StormSpec, StormTraffic
from loadgen.templates import Version

KINDS = ("first", "new", "flap", "repeat")
CURSOR_TRIES = 8         # candidates tried for a new version before falling back to a repeat


@dataclass(frozen=True)
class StreamSpec:
    seed: int
    repeat: float            # share of sends that are exact re-sends
    flap: float              # share of sends that flip firing <-> resolved
    epoch: float | None      # unix seconds of logical time 0 (None: the run's start)
    unit: str                # 'bytes' or 'alerts': what `rate` counts
    rate: float              # this producer's base rate, units per second
    profile: Profile
    planned: float           # planned run length in seconds (run fraction = t / planned)
    guard: int = 2000
    window: int = 4096
    storm: StormSpec | None = None     # --profile incident-storm


class Stream:
    def __init__(self, spec: StreamSpec, population: dict[str, list[Group]],
                 mix: dict[str, float], producer: int, storm: Group | None = None):
        self.spec = spec
        self.rng = random.Random(f"{spec.seed}:{producer}:stream")
        self.providers = [p for p in mix if population.get(p)]
        self.cumulative = []
        total = 0.0
        for provider in self.providers:
            total += mix[provider]
            self.cumulative.append(total)
        self.total_weight = total
        self.order = {}
        for provider in self.providers:
            groups = list(population[provider])
            self.rng.shuffle(groups)
            self.order[provider] = groups
        self.cursor = dict.fromkeys(self.providers, 0)
        self.recent = {p: collections.deque(maxlen=spec.window) for p in self.providers}
        self.storm = storm
        self.storm_amount = 0.0
        self.storm_base = 0.0
        self.bytes_unit = spec.unit == "bytes"
        self.multiplier = spec.profile.multiplier
        self.i = 0
        self.t = 0.0
        self.event_base = 10**12 + salt_of(spec.seed, producer) * 10**9
        self.events_made = 0
        self.kinds = dict.fromkeys(KINDS, 0)
        self.kind = ""
        self.incidents: StormTraffic | None = None

    def arm_incident_storm(self, population, producer: int, producers: int) -> None:
        """Build this producer's share of the incident storm, once the epoch is known (its
        hosts and fingerprints derive from it); does nothing without one or when built."""
        spec = self.spec
        if spec.storm is None or spec.epoch is None or self.incidents is not None:
            return
        self.incidents = StormTraffic(spec.storm, population, spec.epoch, spec.planned,
                                      producer, producers)

    def next(self) -> Group:
        """The group notified by the next send, its `current` payloads, `keys` and `size`
        set for this send. `kind` tells what the send was."""
        spec = self.spec
        x = self.t / spec.planned
        storm = self.storm
        if (storm is not None and spec.profile.storming(x)
                and self.storm_amount < (BURST - 1) * self.storm_base):
            group = storm
            if group.version < 0:
                # Every producer re-sends this alert: its one version must be byte-identical
                # in all of them, so it is stamped from the plan, not from this stream.
                start = spec.epoch + spec.planned * SLICE[0]
                self._stamp(group, "firing", Version(start, 0.0, start, 10**12))
                self.kind = "first"
            else:
                self.kind = "repeat"
        else:
            due = self.incidents.pop_due(self.t) if self.incidents is not None else None
            group = self._pick() if due is None else self._storm_send(*due)
        self.kinds[self.kind] = self.kinds.get(self.kind, 0) + 1
        group.last_send = self.i
        self.i += 1
        amount = group.size if self.bytes_unit else group.alerts
        if storm is not None and spec.profile.storming(x):
            if group is storm:
                self.storm_amount += amount
            else:
                self.storm_base += amount
        rate = spec.rate * (self.multiplier(x) if self.multiplier is not None else 1.0)
        self.t += amount / rate
        return group

    def _pick(self) -> Group:
        rng = self.rng
        provider = self.providers[bisect.bisect(self.cumulative,
                                                rng.random() * self.total_weight)]
        recent = self.recent[provider]
        u = rng.random()
        if recent and u < self.spec.repeat + self.spec.flap:
            group = recent[int(rng.random() * len(recent))]
            if u >= self.spec.repeat:
                for _ in range(CURSOR_TRIES):
                    if self.i - group.last_send >= self.spec.guard:
                        self._flap(group)
                        self.kind = "flap"
                        return group
                    group = recent[int(rng.random() * len(recent))]
            self.kind = "repeat"
            return group
        order = self.order[provider]
        for _ in range(CURSOR_TRIES):
            group = order[self.cursor[provider]]
            self.cursor[provider] = (self.cursor[provider] + 1) % len(order)
            if group.version < 0 or self.i - group.last_send >= self.spec.guard:
                self.kind = "first" if group.version < 0 else "new"
                self._start(group)
                recent.append(group)
                return group
        self.kind = "repeat"   # every candidate notified too recently for a new version
        return group

    def _storm_send(self, group: Group, fires: bool) -> Group:
        """A storm alert fires (a new episode) or resolves (loadgen/storm.py)."""
        now = max(self.spec.epoch + self.t, group.start + 0.002, group.resolved + 0.002)
        if fires:
            group.start = now
            self._stamp(group, "firing", Version(now, 0.0, now, self._new_event_id()))
            self.kind = "storm fire"
        else:
            group.resolved = now
            self._stamp(group, "resolved", Version(group.start, now, now, self._new_event_id()))
            self.kind = "storm resolve"
        return group

    def _new_event_id(self) -> int:
        self.events_made += 1
        return self.event_base + self.events_made

    def _start(self, group: Group) -> None:
        # Strictly later than the previous episode, in whole milliseconds: versions never
        # repeat content.
        start = max(self.spec.epoch + self.t, group.start + 0.002)
        group.start = start
        group.event_id = self._new_event_id()
        self._stamp(group, "firing", Version(start, 0.0, start, group.event_id))

    def _flap(self, group: Group) -> None:
        if group.status == "resolved":
            self._start(group)
            return
        now = max(self.spec.epoch + self.t, group.start + 0.002)
        group.resolved = now
        if group.new_id_on_resolve:
            group.event_id = self._new_event_id()
        self._stamp(group, "resolved", Version(group.start, now, now, group.event_id))

    @staticmethod
    def _stamp(group: Group, status: str, version: Version) -> None:
        group.status = status
        group.version += 1
        group.current = tuple(t.stamp(version) for t in group.templates[status])
        group.size = group.sizes[status]
        base = (group.index << INDEX_SHIFT) | group.version
        group.keys = tuple(base | (m << MEMBER_SHIFT) for m in range(group.alerts))


def event_digest(event: bytes) -> int:
    """How the verifier recognises one wire event again (in a dead letter)."""
    return xxhash.xxh3_64_intdigest(event)
