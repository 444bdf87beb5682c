"""The detectors the harness judges, each run over simulated series exactly as a gateway would.

The fixed threshold and the rate of rise are the edge's own rule classes fed real ``Reading``
objects one by one. Each detector returns, per sensor, the minute indices at which it raised an
alarm (an ``active`` incident).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np

from gridsense_edge.rules.base import Rule
from gridsense_edge.rules.over_temperature import OverTemperature, OverTemperatureConfig
from gridsense_edge.rules.rapid_rise import RapidRise, RapidRiseConfig
from gridsense_protocol import AlarmState, Reading

from .rooms import ROOMS
from .simulator import Batch

ROOM_LIMIT_C = 60.0
FRIDGE_LIMIT_C = 8.0
# A fridge's door openings lift its probe above 8 °C for minutes; cold-chain alarms wait for
# an excursion to last (here 15 minutes) before they page anyone.
FRIDGE_HOLD_S = 900.0
# The example gateway's rate rule (8 °C/min) judged over three one-minute readings: the
# harness sees one reading a minute and the rule needs three samples in its window.
RATE_PER_MIN = 8.0
RATE_WINDOW_S = 180.0
EPOCH = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday, local midnight in the simulator's frame
POINT = "sim.point"

RuleFactory = Callable[[], Rule]
Alarms = list[np.ndarray]  # per sensor: minute indices of the alarms


def limit_for(room: str) -> float:
    return FRIDGE_LIMIT_C if ROOMS[room].fridge else ROOM_LIMIT_C


def threshold_rule(room: str) -> RuleFactory:
    fridge = ROOMS[room].fridge
    config = OverTemperatureConfig(type="over_temperature", threshold=limit_for(room),
                                   hysteresis=0.5 if fridge else 2.0,
                                   min_duration_s=FRIDGE_HOLD_S if fridge else 5.0)
    return lambda: OverTemperature(config)


def rate_rule(room: str) -> RuleFactory | None:
    """None for fridges: a failing fridge warms by degrees an hour, no rate rule is set there."""
    if ROOMS[room].fridge:
        return None
    config = RapidRiseConfig(type="rapid_rise", rate_per_min=RATE_PER_MIN,
                             window_s=RATE_WINDOW_S)
    return lambda: RapidRise(config)


def minute_times(minutes: int) -> list[datetime]:
    return [EPOCH + timedelta(minutes=m) for m in range(minutes)]


def drive_rules(factories: dict[str, RuleFactory], batch: Batch,
                spans: list[tuple[int, int]] | None = None) -> dict[str, Alarms]:
    """Feed each sensor's readings (within its span of minutes) to fresh rule instances."""
    n, minutes = batch.values.shape
    times = minute_times(minutes)
    out: dict[str, Alarms] = {name: [] for name in factories}
    for i in range(n):
        start, stop = spans[i] if spans is not None else (0, minutes)
        rules = {name: make() for name, make in factories.items()}
        hits: dict[str, list[int]] = {name: [] for name in factories}
        row = batch.values[i]
        for t in np.flatnonzero(np.isfinite(row[start:stop])) + start:
            reading = Reading.model_construct(point=POINT, metric="temperature",
                                              value=float(row[t]), unit="°C", ts=times[t])
            for name, rule in rules.items():
                for event in rule.feed(reading):
                    if event.state is AlarmState.ACTIVE:
                        hits[name].append(int(t))
        for name in factories:
            out[name].append(np.array(hits[name], dtype=np.int64))
    return out
