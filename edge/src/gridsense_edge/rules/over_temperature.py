"""``over_temperature``: a point stayed above ``threshold`` for ``min_duration_s``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from gridsense_protocol import AlarmState, Reading, Severity

from ..configtypes import FiniteFloat
from ..events import IncidentEvent
from .base import RULES, PointRule, Rule, RuleConfigBase


class OverTemperatureConfig(RuleConfigBase):
    type: Literal["over_temperature"]
    threshold: FiniteFloat
    hysteresis: Annotated[FiniteFloat, Field(ge=0)] = 2.0
    min_duration_s: Annotated[float, Field(ge=0, le=86400)] = 0.0
    severity: Severity = Severity.MAJOR


@dataclass
class _PointState:
    above_since: datetime | None = None
    active: bool = False


class OverTemperature(PointRule[OverTemperatureConfig, _PointState]):
    incident_type = "over_temperature"

    def new_state(self) -> _PointState:
        return _PointState()

    def evaluate(self, state: _PointState, reading: Reading) -> IncidentEvent | None:
        cfg = self.config
        value = reading.value
        if state.active:
            clear_below = cfg.threshold - cfg.hysteresis
            if value < clear_below:
                state.active = False
                state.above_since = None
                return self.event(
                    reading, AlarmState.CLEARED, value, cfg.threshold, reading.unit,
                    f"{reading.point}: {reading.metric} back to {value:g}{reading.unit} "
                    f"(below {clear_below:g}{reading.unit})",
                    clear_below=clear_below,
                )
            return None
        if value <= cfg.threshold:
            state.above_since = None
            return None
        if state.above_since is None:
            state.above_since = reading.ts
        above_for = (reading.ts - state.above_since).total_seconds()
        if above_for < cfg.min_duration_s:
            return None
        state.active = True
        return self.event(
            reading, AlarmState.ACTIVE, value, cfg.threshold, reading.unit,
            f"{reading.point}: {reading.metric} {value:g}{reading.unit} above "
            f"{cfg.threshold:g}{reading.unit} for {above_for:.0f} s",
            above_since=state.above_since.isoformat(), above_for_s=round(above_for, 3),
            min_duration_s=cfg.min_duration_s,
        )


@RULES.register(OverTemperatureConfig)
def create(config: OverTemperatureConfig) -> Rule:
    return OverTemperature(config)
