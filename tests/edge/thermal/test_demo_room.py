"""The demo's e-bike shed, replayed through the gateway's own rules: with the quiet day the demo
seeds, the model raises temperature_anomaly minutes before the 60 °C threshold, and nothing
while the shed is quiet."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

from gridsense_edge.rules.over_temperature import OverTemperature, OverTemperatureConfig
from gridsense_edge.rules.temperature_anomaly.rule import (
    TemperatureAnomaly,
    TemperatureAnomalyConfig,
)
from gridsense_edge.simulator.scenario import load_scenario
from gridsense_protocol import AlarmState, Reading

SCRIPTS = Path(__file__).resolve().parents[3] / "scripts"
STEP_S = 5  # the demo's refresh_interval_s: a reading at least this often


def _demo_room() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_thermal_room",
                                                  SCRIPTS / "demo_thermal_room.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _scripted(seconds: int, slave: int) -> list[float]:
    """The shed's temperature each STEP_S seconds, as the scenario's ramps move it."""
    [sensor] = [s for s in load_scenario(SCRIPTS / "demo_data" / "gw-01.scenario.yaml").sensors
                if s.slave == slave]
    value, ramp = float(sensor.values["temperature"]), None
    out = []
    for t in range(0, seconds, STEP_S):
        for step in sensor.script:
            if step.at == t and step.ramp_to is not None:
                ramp = (value, step.ramp_to, t, t + step.over_s)
        if ramp is not None:
            start, target, t0, t1 = ramp
            value = target if t >= t1 else start + (target - start) * (t - t0) / (t1 - t0)
        out.append(value)
    return out


def test_the_shed_is_seen_by_the_model_long_before_the_threshold(tmp_path: Path) -> None:
    room = _demo_room()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    state_dir = tmp_path / "state" / "gw-01"
    assert room.seed_history(state_dir, now).is_file()
    config = dict(room.anomaly_rule(), history_dir=str(state_dir / room.HISTORY_FOLDER))
    model = TemperatureAnomaly(TemperatureAnomalyConfig.model_validate(config))
    limit = OverTemperature(OverTemperatureConfig(type="over_temperature", threshold=60,
                                                  hysteresis=3, min_duration_s=5))
    raised: dict[str, int] = {}
    for i, value in enumerate(_scripted(3600, room.SHED_SLAVE)):
        reading = Reading(point=room.SHED, metric="temperature", value=round(value, 1),
                          unit="°C", ts=now + timedelta(seconds=i * STEP_S))
        for rule in (model, limit):
            for event in rule.feed(reading):
                if event.state is AlarmState.ACTIVE:
                    raised.setdefault(event.type, i * STEP_S)
    assert model.health().counters["history_loaded"] == 1, raised
    assert model.counters["warming_up"] == 0
    model_at, threshold_at = raised["temperature_anomaly"], raised["over_temperature"]
    assert 60 < model_at <= 15 * 60  # after the battery starts, within a quarter of an hour
    assert model_at + 10 * 60 < threshold_at, raised
