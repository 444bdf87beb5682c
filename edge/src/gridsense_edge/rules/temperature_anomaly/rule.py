"""``temperature_anomaly``: the temperature model judges each point against its own last day.

Runs beside ``over_temperature`` and ``rapid_rise``, never instead of them: those are separate
rules the agent always feeds. This rule is silent for a point's first 24 hours (no baseline
yet), scores at most once a minute per point, and raises when the score stays at or above the
threshold for ``min_duration_s``. A model that cannot load or fails shows in the health report
(``rule/temperature_anomaly``) and the rule stays silent; the thresholds are untouched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from gridsense_protocol import AlarmState, DriverHealth, DriverState, Reading, Severity

from ...configtypes import STATE_DIR, FiniteFloat, ResolvedPath, context_of
from ...events import IncidentEvent
from ...logs import log_event
from ..base import PointRule, RuleConfigBase
from .features import FEATURES, PointHistory, rising
from .history_store import SAVE_EVERY_MIN, HistoryStore
from .model import ModelUnavailable, TemperatureModel

log = logging.getLogger(__name__)

CLEAR_MARGIN = 2.0  # log-odds below the threshold before an alarm clears


class TemperatureAnomalyConfig(RuleConfigBase):
    type: Literal["temperature_anomaly"]
    model: ResolvedPath  # models/temperature_anomaly/train.py writes it
    # Fridges are calmer than rooms; the model carries a threshold calibrated on each kind.
    kind: Literal["room", "fridge"] = "room"
    threshold: FiniteFloat | None = None  # default: the model's own for ``kind``
    min_duration_s: Annotated[float, Field(ge=0, le=3600)] = 60.0
    severity: Severity = Severity.MAJOR
    # Where each point's 24-hour history is kept across restarts; by default under the
    # gateway's state_dir. Without one (a rule validated on its own) history lives in memory.
    history_dir: Annotated[ResolvedPath | None, Field(validate_default=True)] = None

    @field_validator("history_dir")
    @classmethod
    def _default_history_dir(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        state_dir = context_of(info).get(STATE_DIR)
        if value is None and state_dir is not None:
            return Path(state_dir) / "temperature_history"
        return value


@dataclass
class ScoreLatch:
    """Raises once the score has stayed at or above the threshold, with the reading warmer than
    an hour before (``rising``: a fire or an overheating warms; a room cooling after a hot
    spell does not raise), for ``min_duration_s``; clears when the score falls
    ``CLEAR_MARGIN`` below. The evaluation harness and the training's calibration use this
    rule too."""

    threshold: float
    min_duration_s: float
    above_since: datetime | None = None
    active: bool = False

    def update(self, ts: datetime, score: float, rising: bool = True) -> AlarmState | None:
        if self.active:
            if score < self.threshold - CLEAR_MARGIN:
                self.active = False
                self.above_since = None
                return AlarmState.CLEARED
            return None
        if score < self.threshold or not rising:
            self.above_since = None
            return None
        if self.above_since is None:
            self.above_since = ts
        if (ts - self.above_since).total_seconds() < self.min_duration_s:
            return None
        self.active = True
        return AlarmState.ACTIVE


@dataclass
class _PointState:
    history: PointHistory = field(default_factory=PointHistory)
    latch: ScoreLatch | None = None


class TemperatureAnomaly(PointRule[TemperatureAnomalyConfig, _PointState]):
    incident_type = "temperature_anomaly"
    name = "rule/temperature_anomaly"  # its key in the Health message

    def __init__(self, config: TemperatureAnomalyConfig) -> None:
        super().__init__(config)
        self.counters = dict.fromkeys(("scored", "warming_up", "stuck_probe", "alarms",
                                      "model_errors"), 0)
        self._store = HistoryStore(config.history_dir) if config.history_dir else None
        self._model: TemperatureModel | None = None
        self._problem: str | None = None
        try:
            self._model = TemperatureModel(config.model)
        except ModelUnavailable as exc:
            self._problem = str(exc)
            log_event(log, "temperature_model_unavailable", logging.ERROR, error=str(exc))
        self.threshold = config.threshold if config.threshold is not None else 0.0
        if config.threshold is None and self._model is not None:
            self.threshold = (self._model.fridge_threshold if config.kind == "fridge"
                              else self._model.threshold)

    def new_state(self) -> _PointState:
        return _PointState(latch=ScoreLatch(self.threshold, self.config.min_duration_s))

    def state_for(self, point: str) -> _PointState:
        state = self.new_state()
        if self._store is not None:
            state.history = self._store.load(point) or state.history
        return state

    def evaluate(self, state: _PointState, reading: Reading) -> IncidentEvent | None:
        if self._model is None:
            return None  # health says why; the threshold rules still run
        minute = int(reading.ts.timestamp() // 60)
        if not state.history.add(minute, reading.value):
            return None
        if self._store is not None and minute % SAVE_EVERY_MIN == 0:
            self._store.save(reading.point, state.history)
        row = state.history.features(reading.value)
        if row is None:
            # a stuck probe's hour, or not a full day of history yet
            self.counters["stuck_probe" if state.history.ready else "warming_up"] += 1
            return None
        try:
            score = self._model.score(row)
        except Exception as exc:  # a model fault is a health problem, never a lost reading
            self.counters["model_errors"] += 1
            if self._problem is None:
                log_event(log, "temperature_model_failed", logging.ERROR,
                          point=reading.point, error=repr(exc))
            self._problem = f"模型出错 / model failed: {exc!r}"[:400]
            return None
        self._problem = None
        self.counters["scored"] += 1
        assert state.latch is not None
        transition = state.latch.update(reading.ts, score, rising=rising(row))
        if transition is None:
            return None
        features = dict(zip(FEATURES, (round(v, 4) for v in row), strict=True))
        mean = reading.value - row[0]
        if transition is AlarmState.ACTIVE:
            self.counters["alarms"] += 1
            message = (f"{reading.point}: 温度异常 {reading.value:g}{reading.unit}，"
                       f"比近24小时基线高 {row[0]:+.1f}{reading.unit}，15分钟内 {row[3]:+.1f}"
                       f"{reading.unit} / temperature anomaly: {row[0]:+.1f}{reading.unit} over "
                       f"its 24 h baseline, {row[3]:+.1f}{reading.unit} in 15 min "
                       f"(score {score:.2f} ≥ {self.threshold:.2f})")
        else:
            message = (f"{reading.point}: 温度恢复正常 {reading.value:g}{reading.unit} / "
                       f"temperature back to normal (score {score:.2f})")
        return self.event(reading, transition, round(score, 4), round(self.threshold, 4), "",
                          message, current=reading.value, baseline_mean=round(mean, 3),
                          features=features, model=str(self.config.model))

    def health(self) -> DriverHealth:
        if self._model is None:
            state = DriverState.DOWN
        elif self._problem is not None:
            state = DriverState.DEGRADED
        else:
            state = DriverState.OK
        detail = self._problem[:500] if self._problem is not None else None
        counters = dict(self.counters)
        if self._store is not None:
            counters.update(self._store.counters)
        return DriverHealth(state=state, detail=detail, counters=counters)
