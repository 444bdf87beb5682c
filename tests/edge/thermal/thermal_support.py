"""Feeding simulated series to edge rules one reading a minute, as the harness does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from temperature_anomaly.detectors import minute_times

from gridsense_edge.rules.base import Rule
from gridsense_protocol import AlarmState, Reading

MODEL = Path(__file__).resolve().parents[3] / "models" / "temperature_anomaly" / (
    "temperature_anomaly.onnx")


def feed(rule: Rule, row: np.ndarray, point: str = "gw-t1.room", start: int = 0,
         stop: int | None = None) -> list[tuple[int, AlarmState]]:
    """(minute, state) of every incident event the rule raises over one sensor's series, fed
    from minute ``start`` up to ``stop``."""
    times = minute_times(len(row))
    out: list[tuple[int, AlarmState]] = []
    for t in np.flatnonzero(np.isfinite(row)):
        if t < start or (stop is not None and t >= stop):
            continue
        reading = Reading(point=point, metric="temperature", value=float(row[t]), unit="°C",
                          ts=times[t])
        out.extend((int(t), event.state) for event in rule.feed(reading))
    return out


def first_active(events: list[tuple[int, AlarmState]], since: int = 0) -> int | None:
    return next((t for t, state in events if state is AlarmState.ACTIVE and t >= since), None)
