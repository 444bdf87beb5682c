"""The places a community puts temperature sensors, as parameters of the thermal simulator.

Each room type says how its air temperature lives: a base level, how much it follows the
weather outside, its heating/cooling cycle, sun on a wall, how often a door opens and for how
long, and how good its sensor is. Each simulated sensor draws its own values around these, so
two boiler rooms are never the same room.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RoomType:
    name: str
    base_c: tuple[float, float]  # range of the room's own level (°C), drawn per sensor
    outdoor_coupling: float  # 0 = sealed room, 1 = the weather itself
    cycle_amp_c: tuple[float, float]  # heating / air-conditioning / compressor cycle amplitude
    cycle_period_min: tuple[float, float]
    sun_amp_c: float  # afternoon sun on a wall, on a clear day
    doors_per_day: float
    door_hours: tuple[float, float]  # local hours doors are used in
    door_minutes: tuple[float, float]  # how long one stays open
    door_target: str  # "outdoor": air from outside; "room": a fridge opened into a 22 °C room
    door_pull: float  # share of the gap to the target closed per open minute
    noise_c: float
    lag_min: float  # the probe's own thermal time constant
    defrost_every_h: float = 0.0  # a fridge warming on purpose to melt its coil (0 = never)
    evening_load_c: float = 0.0  # heat of bikes charging overnight (e-bike sheds)
    fridge: bool = False


ROOMS: dict[str, RoomType] = {r.name: r for r in (
    RoomType("boiler_room", (24.0, 34.0), 0.10, (1.0, 3.0), (25.0, 60.0), 0.5, 3.0, (7, 19),
             (2.0, 10.0), "outdoor", 0.04, 0.10, 1.5),
    RoomType("pump_room", (18.0, 28.0), 0.20, (0.5, 1.5), (60.0, 120.0), 0.3, 2.0, (8, 18),
             (2.0, 15.0), "outdoor", 0.04, 0.10, 1.5),
    RoomType("distribution_room", (22.0, 30.0), 0.25, (0.5, 1.5), (15.0, 35.0), 2.0, 1.0,
             (9, 17), (5.0, 30.0), "outdoor", 0.03, 0.10, 1.5),
    RoomType("garbage_station", (12.0, 22.0), 0.85, (0.0, 0.0), (60.0, 60.0), 6.0, 30.0, (6, 21),
             (0.5, 2.0), "outdoor", 0.05, 0.20, 2.0),
    RoomType("ebike_shed", (12.0, 22.0), 0.75, (0.0, 0.0), (60.0, 60.0), 5.0, 15.0, (6, 23),
             (0.5, 2.0), "outdoor", 0.05, 0.20, 2.0, evening_load_c=2.0),
    RoomType("vaccine_fridge", (4.0, 6.0), 0.0, (0.4, 1.0), (25.0, 45.0), 0.0, 12.0, (8, 17),
             (0.3, 2.5), "room", 0.10, 0.05, 4.0, fridge=True),
    RoomType("pharmacy_fridge", (3.5, 5.5), 0.0, (0.5, 1.2), (20.0, 35.0), 0.0, 25.0, (8, 20),
             (0.2, 2.0), "room", 0.10, 0.05, 3.0, defrost_every_h=8.0, fridge=True),
)}

# Whole room types the model never trains on: the evaluation judges it on these.
HELD_OUT_ROOMS = ("pump_room", "ebike_shed", "pharmacy_fridge")
TRAIN_ROOMS = tuple(name for name in ROOMS if name not in HELD_OUT_ROOMS)
