"""Load profiles: how the asked rate varies over a run, as a multiplier of the base rate at run
fraction x (0 at the start, 1 at the planned end)."""

from __future__ import annotations

import math
from dataclasses import dataclass

SLICE = (0.45, 0.55)   # where a spike or storm happens: the middle tenth of the run
BURST = 5.0            # a spike's multiplier; a storm adds BURST - 1 times the base rate


def _steady(_x: float) -> float:
    return 1.0


def _spike(x: float) -> float:
    return BURST if SLICE[0] <= x < SLICE[1] else 1.0


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
    "spike": Profile("spike", _spike, 1 + (BURST - 1) * (SLICE[1] - SLICE[0]),
                     "x5 the asked rate for the middle tenth of the run"),
    "storm": Profile("storm", _spike, 1 + (BURST - 1) * (SLICE[1] - SLICE[0]),
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
