"""Load profiles: how the asked rate varies over a run, as a multiplier of the base rate at run
fraction x (0 at the start, 1 at the planned end)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from farm.units import parse_duration

SLICE = (0.45, 0.55)   # where a spike or storm happens: the middle tenth of the run
BURST = 5.0            # a spike's multiplier; a storm adds BURST - 1 times the base rate


def _steady(_x: float) -> float:
    return 1.0


@dataclass(frozen=True)
class Spike:
    """`factor` times the base rate between run fractions `start` and `end`, the base rate
    elsewhere. A dataclass, not a closure, so producer processes can be handed one."""

    factor: float
    start: float
    end: float

    def __call__(self, x: float) -> float:
        return self.factor if self.start <= x < self.end else 1.0

    @property
    def mean(self) -> float:
        return 1 + (self.factor - 1) * (self.end - self.start)


SPIKE_START = 0.25     # a --spike begins a quarter of the way into the run
_DEFAULT_SPIKE = Spike(BURST, *SLICE)


def _diurnal(x: float) -> float:
    # Night at the start and end, a peak at midday; averages 1 over the run.
    return 1.0 - 0.6 * math.cos(2 * math.pi * x)


@dataclass(frozen=True)
class Profile:
    name: str
    multiplier: object          # x -> total rate multiplier (None: no pacing)
    mean: float                 # mean multiplier over a run, to plan a --total run's length
    help: str

    def storming(self, x: float) -> bool:
        """True while a storm re-sends its one alert (in addition to the base traffic)."""
        return self.name == "storm" and SLICE[0] <= x < SLICE[1]


PROFILES = {
    "steady": Profile("steady", _steady, 1.0, "the asked rate throughout"),
    "spike": Profile("spike", _DEFAULT_SPIKE, _DEFAULT_SPIKE.mean,
                     "x5 the asked rate for the middle tenth of the run (--spike changes it)"),
    "storm": Profile("storm", _DEFAULT_SPIKE, _DEFAULT_SPIKE.mean,
                     "the asked rate, plus one alert re-sent at 4x that rate for the middle "
                     "tenth of the run"),
    "diurnal": Profile("diurnal", _diurnal, 1.0,
                       "a day's curve compressed into the run: 0.4x at the start and end, "
                       "1.6x in the middle; the mean is the asked rate"),
    "incident-storm": Profile("incident-storm", _steady, 1.0,
                              "the asked rate, of which hosts x alerts fire and resolve in "
                              "waves for correlation rules (configs/correlation/storm.toml)"),
    "max": Profile("max", None, 1.0, "as fast as the producers can generate and push"),
}


def parse_spike(text: str, run_seconds: float) -> Profile:
    """'10x:30s' -> the spike profile: 10 times the rate for 30 s, from a quarter of the way
    into a run of run_seconds. Raises ValueError naming --spike."""
    factor_text, sep, length_text = text.partition(":")
    try:
        factor = float(factor_text.strip().rstrip("xX"))
        seconds = parse_duration(length_text.strip()) if sep else None
    except ValueError:
        factor, seconds = None, None
    if factor is None or seconds is None:
        raise ValueError(f"--spike {text!r} must be FACTORx:DURATION, like 10x:30s")
    if not 1 < factor <= 1000 or seconds <= 0:
        raise ValueError(f"--spike {text!r}: the factor must be above 1 (at most 1000) and "
                         f"the duration above zero")
    end = SPIKE_START + seconds / run_seconds
    if end > 1:
        raise ValueError(f"--spike {text!r} does not fit: it starts {SPIKE_START:.0%} into "
                         f"the {run_seconds:g} s run and must end before it does; give a "
                         f"--duration of at least {seconds / (1 - SPIKE_START):.0f}s")
    shape = Spike(factor, SPIKE_START, end)
    return Profile("spike", shape, shape.mean,
                   f"x{factor:g} the asked rate for {seconds:g} s from a quarter into the run")
