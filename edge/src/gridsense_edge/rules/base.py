"""Local rules: pure functions of the readings they are fed, so they test without any I/O."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from gridsense_protocol import AlarmState, Reading, Severity

from ..events import IncidentEvent
from ..plugins import PluginRegistry


class Rule(Protocol):
    def feed(self, reading: Reading) -> list[IncidentEvent]: ...


class RuleConfigBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    points: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)] = ["*"]
    metric: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")] = "temperature"
    severity: Severity = Severity.MAJOR


C = TypeVar("C", bound=RuleConfigBase)
S = TypeVar("S")


class PointRule(Generic[C, S]):
    """Routes readings of the configured metric and points to a per-point state.

    Subclasses implement ``new_state`` and ``evaluate``. Readings older than the last one seen
    for a point are ignored: device clocks may step back, and a rule must not go backwards.
    """

    incident_type: str

    def __init__(self, config: C) -> None:
        self.config = config
        self._matches: dict[str, bool] = {}  # bounded by the number of configured points
        self._states: dict[str, S] = {}
        self._last_ts: dict[str, datetime] = {}

    def applies_to(self, point: str) -> bool:
        hit = self._matches.get(point)
        if hit is None:
            hit = any(fnmatch.fnmatchcase(point, glob) for glob in self.config.points)
            self._matches[point] = hit
        return hit

    def feed(self, reading: Reading) -> list[IncidentEvent]:
        if reading.metric != self.config.metric or not self.applies_to(reading.point):
            return []
        last = self._last_ts.get(reading.point)
        if last is not None and reading.ts < last:
            return []
        self._last_ts[reading.point] = reading.ts
        state = self._states.get(reading.point)
        if state is None:
            state = self._states[reading.point] = self.state_for(reading.point)
        event = self.evaluate(state, reading)
        return [event] if event is not None else []

    def new_state(self) -> S:
        raise NotImplementedError

    def state_for(self, point: str) -> S:
        """A point's first state; a rule that keeps state across restarts loads it here."""
        return self.new_state()

    def evaluate(self, state: S, reading: Reading) -> IncidentEvent | None:
        raise NotImplementedError

    def event(
        self, reading: Reading, state: AlarmState, value: float, threshold: float | None,
        unit: str, message: str, **details: Any,
    ) -> IncidentEvent:
        return IncidentEvent(
            point=reading.point, type=self.incident_type, severity=self.config.severity,
            state=state, ts=reading.ts, value=value, threshold=threshold, unit=unit,
            message=message, details=details,
        )


RuleFactory = Callable[[Any], Rule]

RULES: PluginRegistry[RuleFactory] = PluginRegistry(
    "rule", "gridsense_edge.rules",
    index={"over_temperature": "over_temperature", "rapid_rise": "rapid_rise",
           "temperature_anomaly": "temperature_anomaly"},
)
