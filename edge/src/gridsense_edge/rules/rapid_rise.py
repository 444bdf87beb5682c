"""``rapid_rise``: a point's value climbs faster than ``rate_per_min`` over ``window_s``."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field

from gridsense_protocol import AlarmState, Reading, Severity

from ..configtypes import FiniteFloat
from ..events import IncidentEvent
from .base import RULES, PointRule, Rule, RuleConfigBase

MAX_SAMPLES = 1200  # per point: 20 minutes at 1 Hz; older samples are dropped first
MIN_SAMPLES = 3
CLEAR_RATIO = 0.5


class RapidRiseConfig(RuleConfigBase):
    type: Literal["rapid_rise"]
    rate_per_min: Annotated[FiniteFloat, Field(gt=0)]
    window_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    severity: Severity = Severity.CRITICAL


@dataclass
class _PointState:
    samples: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=MAX_SAMPLES))
    active: bool = False


def slope_per_s(samples: deque[tuple[float, float]]) -> float:
    """Least-squares slope of (t, value); times are shifted to keep the sums well conditioned."""
    t0 = samples[0][0]
    n = len(samples)
    mean_t = sum(t - t0 for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    var_t = sum((t - t0 - mean_t) ** 2 for t, _ in samples)
    if var_t == 0:
        return 0.0
    cov = sum((t - t0 - mean_t) * (v - mean_v) for t, v in samples)
    return cov / var_t


class RapidRise(PointRule[RapidRiseConfig, _PointState]):
    incident_type = "rapid_rise"

    def new_state(self) -> _PointState:
        return _PointState()

    def evaluate(self, state: _PointState, reading: Reading) -> IncidentEvent | None:
        cfg = self.config
        now = reading.ts.timestamp()
        samples = state.samples
        samples.append((now, reading.value))
        while samples and samples[0][0] < now - cfg.window_s:
            samples.popleft()
        if len(samples) < MIN_SAMPLES or now - samples[0][0] < cfg.window_s / 2:
            return None
        rate = slope_per_s(samples) * 60.0
        unit = f"{reading.unit}/min"
        if not state.active and rate >= cfg.rate_per_min:
            state.active = True
            return self.event(
                reading, AlarmState.ACTIVE, round(rate, 3), cfg.rate_per_min, unit,
                f"{reading.point}: {reading.metric} rising {rate:.1f} {unit} over the last "
                f"{now - samples[0][0]:.0f} s (limit {cfg.rate_per_min:g} {unit}), now "
                f"{reading.value:g}{reading.unit}",
                current=reading.value, window_s=cfg.window_s, samples=len(samples),
            )
        if state.active and rate <= cfg.rate_per_min * CLEAR_RATIO:
            state.active = False
            return self.event(
                reading, AlarmState.CLEARED, round(rate, 3), cfg.rate_per_min, unit,
                f"{reading.point}: {reading.metric} rate back to {rate:.1f} {unit}, now "
                f"{reading.value:g}{reading.unit}",
                current=reading.value, window_s=cfg.window_s, samples=len(samples),
            )
        return None


@RULES.register(RapidRiseConfig)
def create(config: RapidRiseConfig) -> Rule:
    return RapidRise(config)
