"""Thermal simulator: one reading a minute from a batch of sensors of one room type.

Deterministic for (room, seed, n, minutes); an onset family draws its own parameters from a
separate stream, so the same seed with and without an event gives the same series up to the
onset. Series start at local midnight. ``values`` holds NaN where the sensor said nothing
(dropouts); a stuck sensor repeats one value. Vectorised over sensors, so 1,000 sensor-weeks
take seconds.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from .events import FAMILIES
from .rooms import ROOMS, RoomType

DAY_MIN = 1440
WEEK_MIN = 7 * DAY_MIN
FIRST_ONSET_MIN = DAY_MIN + 60  # detectors with a baseline get a day of history first
ONSET_SPREAD_MIN = DAY_MIN  # onsets fall anywhere in the following day
QUANTUM_C = 0.1  # what common RS-485 and 1-Wire probes resolve
DROPOUTS_PER_WEEK = 1.0
STUCK_PER_WEEK = 0.3


@dataclass(frozen=True, slots=True)
class Batch:
    room: str
    family: str | None
    seed: int
    values: np.ndarray  # (n, T) °C, one reading a minute, NaN = none
    onset: np.ndarray  # (n,) minute index of the onset, -1 = no event
    horizon_min: int  # 0 without an event


def _key(name: str) -> int:
    return zlib.crc32(name.encode())


def _slow_noise(rng: np.random.Generator, n: int, minutes: int, sigma: float,
                tau_min: float) -> np.ndarray:
    """AR(1) weather wander; built at hourly steps and interpolated (cheap, smooth)."""
    hours = minutes // 60 + 2
    a = np.exp(-60.0 / tau_min)
    shocks = rng.normal(0.0, sigma * np.sqrt(1 - a * a), size=(n, hours))
    walk = np.empty_like(shocks)
    walk[:, 0] = rng.normal(0.0, sigma, size=n)
    for h in range(1, hours):
        walk[:, h] = a * walk[:, h - 1] + shocks[:, h]
    t = np.arange(minutes) / 60.0
    return np.stack([np.interp(t, np.arange(hours), row) for row in walk])


def _triangle(phase: np.ndarray) -> np.ndarray:
    return 4.0 * np.abs(phase - np.floor(phase + 0.5)) - 1.0


def _air(room: RoomType, rng: np.random.Generator, n: int, minutes: int
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(air without doors, the cycle part of it, what an open door lets in) — all (n, T)."""
    t = np.arange(minutes)[None, :]
    hour = (t / 60.0) % 24
    season = rng.uniform(-5.0, 32.0, (n, 1))
    outdoor = (season + rng.uniform(3.0, 7.0, (n, 1)) * np.cos(2 * np.pi * (hour - 15) / 24)
               + _slow_noise(rng, n, minutes, 2.0, 720.0))
    clear = 1.0 - rng.uniform(0.0, 1.0, (n, minutes // DAY_MIN + 1))[:, t[0] // DAY_MIN]
    sun = (room.sun_amp_c * rng.uniform(0.5, 1.5, (n, 1)) * clear
           * np.clip(np.sin(np.pi * (hour - 10) / 7), 0, None) ** 2)
    base = rng.uniform(*room.base_c, (n, 1))
    c = room.outdoor_coupling
    level = (1 - c) * base + c * outdoor
    period = rng.uniform(*room.cycle_period_min, (n, 1))
    cycle = rng.uniform(*room.cycle_amp_c, (n, 1)) * _triangle(t / period + rng.random((n, 1)))
    extra = np.zeros((n, minutes))
    if room.defrost_every_h:
        every = room.defrost_every_h * 60
        since = (t + rng.uniform(0, every, (n, 1))) % every
        extra += rng.uniform(2.0, 3.0, (n, 1)) * np.clip(since / 15.0, 0, 1) * (since < 20)
    if room.evening_load_c:
        extra += room.evening_load_c * rng.uniform(0.3, 1.5, (n, 1)) * ((hour >= 19) | (hour < 6))
    if room.door_target == "room":
        target = np.broadcast_to(rng.uniform(18.0, 28.0, (n, 1)), (n, minutes))
    else:
        target = outdoor
    return level + sun + extra, cycle, target


def _doors_and_probe(room: RoomType, rng: np.random.Generator, air: np.ndarray,
                     target: np.ndarray) -> np.ndarray:
    """Doors let the target air in while open; the probe follows the air with its lag."""
    n, minutes = air.shape
    hour = (np.arange(minutes) / 60.0) % 24
    h0, h1 = room.door_hours
    per_min = room.doors_per_day / (60.0 * (h1 - h0))
    starts = (rng.random((n, minutes)) < per_min) & ((hour >= h0) & (hour < h1))[None, :]
    lengths = rng.uniform(*room.door_minutes, (n, minutes))
    recover = 0.3 if room.fridge else 0.1
    lag = 1.0 - np.exp(-1.0 / rng.uniform(0.7, 1.3, n) / room.lag_min)
    remaining = np.zeros(n)
    door = np.zeros(n)
    probe = air[:, 0].copy()
    out = np.empty_like(air)
    for k in range(minutes):
        remaining = np.where(starts[:, k], np.maximum(remaining, lengths[:, k]), remaining)
        open_ = np.clip(remaining, 0.0, 1.0)
        remaining -= 1.0
        door += open_ * room.door_pull * (target[:, k] - air[:, k] - door) \
            - (1.0 - open_) * recover * door
        probe += (air[:, k] + door - probe) * lag
        out[:, k] = probe
    return out


def _sensor_faults(room: RoomType, rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    n, minutes = values.shape
    out = values + rng.normal(0.0, room.noise_c, values.shape)
    out = np.round(out / QUANTUM_C) * QUANTUM_C
    weeks = minutes / WEEK_MIN
    for i in range(n):
        for _ in range(rng.poisson(STUCK_PER_WEEK * weeks)):
            a = int(rng.integers(0, minutes))
            out[i, a:a + int(rng.integers(30, 360))] = out[i, a]
        for _ in range(rng.poisson(DROPOUTS_PER_WEEK * weeks)):
            a = int(rng.integers(0, minutes))
            out[i, a:a + int(rng.integers(1, 120))] = np.nan
    return out


def simulate(room: str, n: int, minutes: int, seed: int, family: str | None = None,
             onset: np.ndarray | None = None) -> Batch:
    """``n`` sensors of ``room`` for ``minutes``; with ``family``, an onset at ``onset``."""
    spec = ROOMS[room]
    rng = np.random.default_rng([seed, _key(room), n, minutes])
    air, cycle, target = _air(spec, rng, n, minutes)
    starts = np.full(n, -1)
    horizon = 0
    if family is not None:
        fam = FAMILIES[family]
        if room not in fam.rooms:
            raise ValueError(f"{family} does not happen in a {room}")
        erng = np.random.default_rng([seed, _key(room), n, minutes, _key(family)])
        starts = (erng.integers(FIRST_ONSET_MIN, FIRST_ONSET_MIN + ONSET_SPREAD_MIN, n)
                  if onset is None else np.asarray(onset))
        since = np.arange(minutes)[None, :] - starts[:, None]
        air = air + fam.effect(erng, since)
        if fam.stops_cycle:
            cycle = cycle * (since <= 0)
        horizon = fam.horizon_min
    probe = _doors_and_probe(spec, rng, air + cycle, target)
    return Batch(room, family, seed, _sensor_faults(spec, rng, probe), starts, horizon)


def scenario(room: str, family: str, n: int, seed: int) -> Batch:
    """Event scenarios: a day of history, an onset in the next day, then the family's horizon."""
    minutes = FIRST_ONSET_MIN + ONSET_SPREAD_MIN + FAMILIES[family].horizon_min
    return simulate(room, n, minutes, seed, family)
