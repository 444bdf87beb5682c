"""The onsets the detectors must see: how each one adds heat to a room's air, minute by minute.

An onset family is a function of minutes since onset (negative before it) that returns the
added temperature (°C) for a batch of sensors, each with its own draw of the family's
parameters. Shapes follow the physics loosely: a flaming fire grows with the square of time
(the t² fire of fire engineering), a smouldering one creeps and may flare up, an e-bike battery
heats for minutes and then runs away in seconds, a failing fridge relaxes exponentially toward
the room it stands in, a pump room without ventilation climbs to a new level over hours.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Onset = Callable[[np.random.Generator, np.ndarray], np.ndarray]  # (rng, minutes (n, T)) -> °C


def _u(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    return rng.uniform(low, high, size=(n, 1))


def flaming_fire(rng: np.random.Generator, s: np.ndarray) -> np.ndarray:
    tau = _u(rng, 3.0, 12.0, len(s))  # minutes for the air at the probe to gain 60 °C
    return np.where(s > 0, np.minimum(60.0 * (np.maximum(s, 0) / tau) ** 2, 400.0), 0.0)


def smouldering_fire(rng: np.random.Generator, s: np.ndarray) -> np.ndarray:
    n = len(s)
    rate = _u(rng, 0.03, 0.3, n)  # °C/min while smouldering
    accel = _u(rng, 0.0, 0.002, n)
    flare_at = _u(rng, 30.0, 240.0, n)  # many never flare up within the horizon
    tau = _u(rng, 3.0, 12.0, n)
    sp = np.maximum(s, 0)
    smoulder = rate * sp + accel * sp**2
    flame = np.minimum(60.0 * (np.maximum(sp - flare_at, 0) / tau) ** 2, 400.0)
    return np.where(s > 0, smoulder + flame, 0.0)


def ebike_runaway(rng: np.random.Generator, s: np.ndarray) -> np.ndarray:
    n = len(s)
    tau = _u(rng, 4.0, 15.0, n)  # the cell's self-heating before venting
    heat_min = _u(rng, 10.0, 40.0, n)
    gain = _u(rng, 2.0, 8.0, n) / np.expm1(heat_min / tau)  # °C at the probe when it vents
    sp = np.maximum(s, 0)
    heating = gain * np.expm1(np.minimum(sp, heat_min) / tau)
    runaway = _u(rng, 80.0, 250.0, n) * -np.expm1(-np.maximum(sp - heat_min, 0) / 0.7)
    return np.where(s > 0, heating + runaway, 0.0)


def _relax(rng: np.random.Generator, s: np.ndarray, rise: tuple[float, float],
           tau_h: tuple[float, float]) -> np.ndarray:
    n = len(s)
    level = _u(rng, *rise, n)
    tau = _u(rng, *tau_h, n) * 60.0
    return np.where(s > 0, level * -np.expm1(-np.maximum(s, 0) / tau), 0.0)


def fridge_compressor_stop(rng: np.random.Generator, s: np.ndarray) -> np.ndarray:
    return _relax(rng, s, (14.0, 20.0), (2.0, 6.0))  # toward the room it stands in


def fridge_degraded(rng: np.random.Generator, s: np.ndarray) -> np.ndarray:
    return _relax(rng, s, (5.0, 10.0), (3.0, 10.0))  # still cools, not enough


def pump_overheat(rng: np.random.Generator, s: np.ndarray) -> np.ndarray:
    return _relax(rng, s, (12.0, 30.0), (0.5, 3.0))


def ventilation_failure(rng: np.random.Generator, s: np.ndarray) -> np.ndarray:
    return _relax(rng, s, (8.0, 20.0), (1.0, 4.0))


@dataclass(frozen=True, slots=True)
class OnsetFamily:
    name: str
    effect: Onset
    rooms: tuple[str, ...]  # where it happens
    horizon_min: int  # a detection later than this after onset does not count
    stops_cycle: bool = False  # a dead compressor no longer cycles


_ROOMS_THAT_BURN = ("boiler_room", "pump_room", "distribution_room", "garbage_station",
                    "ebike_shed")
_FRIDGES = ("vaccine_fridge", "pharmacy_fridge")

FAMILIES: dict[str, OnsetFamily] = {f.name: f for f in (
    OnsetFamily("flaming_fire", flaming_fire, _ROOMS_THAT_BURN, 120),
    OnsetFamily("smouldering_fire", smouldering_fire, _ROOMS_THAT_BURN, 240),
    OnsetFamily("ebike_runaway", ebike_runaway, ("ebike_shed", "garbage_station"), 120),
    OnsetFamily("ventilation_failure", ventilation_failure, ("distribution_room", "boiler_room"),
                720),
    OnsetFamily("pump_overheat", pump_overheat, ("pump_room",), 720),
    OnsetFamily("fridge_compressor_stop", fridge_compressor_stop, _FRIDGES, 1440,
                stops_cycle=True),
    OnsetFamily("fridge_degraded", fridge_degraded, _FRIDGES, 1440),
)}

# Onset families the model never trains on: the evaluation judges it on these.
HELD_OUT_FAMILIES = ("smouldering_fire", "ebike_runaway", "fridge_degraded", "pump_overheat")
TRAIN_FAMILIES = tuple(name for name in FAMILIES if name not in HELD_OUT_FAMILIES)
