"""The ``temperature_anomaly`` edge rule with the trained model in a real onnxruntime session:
the same features and decisions as the harness, silent for a day, and a health flag (never an
exception, never a silenced threshold) when the model cannot run."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from temperature_anomaly.features import series_features
from temperature_anomaly.model_detector import ModelDetector
from temperature_anomaly.network import Network, export
from temperature_anomaly.simulator import scenario, simulate
from thermal_support import MODEL, feed, first_active

from gridsense_edge.config import GatewayConfig
from gridsense_edge.rules import RULES
from gridsense_edge.rules.over_temperature import OverTemperature, OverTemperatureConfig
from gridsense_edge.rules.temperature_anomaly.features import (
    FEATURES,
    HISTORY_MIN,
    HOUR_MIN,
    MAX_GAP_MIN,
    STUCK_MIN,
    PointHistory,
)
from gridsense_edge.rules.temperature_anomaly.history_store import SAVE_EVERY_MIN
from gridsense_edge.rules.temperature_anomaly.rule import (
    ScoreLatch,
    TemperatureAnomaly,
    TemperatureAnomalyConfig,
)
from gridsense_protocol import AlarmState, DriverState


def anomaly_rule(model: Path = MODEL) -> TemperatureAnomaly:
    return TemperatureAnomaly(TemperatureAnomalyConfig(type="temperature_anomaly", model=model))


def test_the_rule_computes_the_features_the_model_was_trained_on() -> None:
    values = simulate("vaccine_fridge", 3, 3 * HISTORY_MIN, seed=4).values.copy()
    values[1, 2000:2000 + MAX_GAP_MIN + 20] = np.nan  # a long silence: the history restarts
    values[2, 3000:3045] = values[2, 2999]  # a stuck probe for 45 minutes, then a jump
    values[2, 3045:] += 3.0
    values[0, 3500:3560] = np.nan  # an hour's dropout: its minutes repeat the one before
    rows, where = series_features(values)
    incremental: dict[tuple[int, int], list[float]] = {}
    for i, row in enumerate(values):
        history = PointHistory()
        for t in np.flatnonzero(np.isfinite(row)):
            if history.add(int(t), float(row[t])):
                features = history.features(float(row[t]))
                if features is not None:
                    incremental[(i, int(t))] = features
    assert set(incremental) == {(int(i), int(t)) for i, t in where}
    assert not any(i == 1 and 2000 + MAX_GAP_MIN < t < 2200 + HISTORY_MIN
                   for i, t in incremental)  # silent for a day after the restart
    for sensor, start, end in ((2, 2999, 3044), (0, 3499, 3559)):  # stuck: silent, and an hour
        assert not any(i == sensor and start + STUCK_MIN <= t <= end + 1 + HOUR_MIN
                       for i, t in incremental)
        assert (sensor, end + 2 + HOUR_MIN) in incremental
    expected = np.array([incremental[(int(i), int(t))] for i, t in where])
    np.testing.assert_allclose(rows, expected, rtol=1e-5, atol=1e-5)
    assert rows.shape[1] == len(FEATURES)


def test_silent_for_a_day_then_ahead_of_the_threshold_and_equal_to_the_harness() -> None:
    batch = scenario("pump_room", "flaming_fire", 3, seed=4242)  # a held-out room
    harness = ModelDetector(MODEL).alarms(batch)
    for i, row in enumerate(batch.values):
        rule = anomaly_rule()
        limit = OverTemperature(OverTemperatureConfig(type="over_temperature", threshold=60,
                                                      min_duration_s=5))
        events = feed(rule, row)
        assert all(t >= HISTORY_MIN for t, _ in events)
        assert rule.counters["warming_up"] > 0 and rule.counters["scored"] > 0
        raised = [t for t, state in events if state is AlarmState.ACTIVE]
        assert raised == harness[i].tolist()  # the harness judges what the gateway runs
        onset = int(batch.onset[i])
        model_at = first_active(events, onset)
        threshold_at = first_active(feed(limit, row), onset)
        assert model_at is not None and threshold_at is not None
        assert model_at < threshold_at, (i, onset, model_at, threshold_at)
        assert rule.health().state is DriverState.OK


def test_a_stuck_probe_coming_back_is_not_scored_for_an_hour() -> None:
    """The probe repeats one value for 40 minutes while the room warms by 5 °C, then reads
    the room again: the jump is against stale values, so the rule waits an hour."""
    row = simulate("boiler_room", 1, 2 * HISTORY_MIN, seed=11).values[0].copy()
    row = np.where(np.isnan(row), np.nanmean(row), row)  # no dropouts of its own
    start, end = HISTORY_MIN + 200, HISTORY_MIN + 240
    row[end:] += 5.0
    row[start:end] = row[start - 1]
    rule = anomaly_rule()
    events = feed(rule, row, start=0, stop=end + HOUR_MIN + 30)
    assert [t for t, state in events if state is AlarmState.ACTIVE] == []
    # not scored from the minute after the run's 30th equal minute to an hour after it ended
    first, last = start - 1 + STUCK_MIN, end + HOUR_MIN
    assert rule.counters["stuck_probe"] == last - first + 1
    assert rule.counters["scored"] == (last + 30) - HISTORY_MIN - (last - first + 1)


def test_an_alarm_starts_only_while_the_reading_is_warmer_than_an_hour_before() -> None:
    latch = ScoreLatch(threshold=10.0, min_duration_s=60.0)
    t0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    at = [t0 + timedelta(minutes=k) for k in range(6)]
    # a room cooling after a hot spell: high scores, falling readings
    assert [latch.update(t, 15.0, rising=False) for t in at[:3]] == [None, None, None]
    assert latch.update(at[3], 15.0) is None  # warming again: the minute's hold starts now
    assert latch.update(at[4], 15.0) is AlarmState.ACTIVE
    assert latch.update(at[5], 15.0, rising=False) is None  # raised: stays until the score falls


def test_fridge_points_use_the_threshold_calibrated_on_fridges() -> None:
    room = anomaly_rule()
    fridge = TemperatureAnomaly(TemperatureAnomalyConfig(type="temperature_anomaly", model=MODEL,
                                                         kind="fridge"))
    own = TemperatureAnomaly(TemperatureAnomalyConfig(type="temperature_anomaly", model=MODEL,
                                                      kind="fridge", threshold=12.5))
    assert fridge.threshold < room.threshold  # fridges are calmer: a lower bar is as quiet
    assert own.threshold == 12.5
    assert ModelDetector(MODEL).fridge_threshold == fridge.threshold


def _broken_model(path: Path, features: list[str], weight: float) -> Path:
    f = len(features)
    net = Network(np.zeros(f, np.float32), np.ones(f, np.float32),
                  [np.full((f, 4), weight, np.float32), np.ones((4, 1), np.float32)],
                  [np.zeros(4, np.float32), np.zeros(1, np.float32)])
    export(net, path, {"features": features, "history_min": str(HISTORY_MIN), "threshold": "0"})
    return path


def test_a_model_that_fails_while_running_is_a_health_flag_not_an_alarm(tmp_path: Path) -> None:
    rule = anomaly_rule(_broken_model(tmp_path / "nan.onnx", list(FEATURES), float("nan")))
    assert rule.health().state is DriverState.OK  # it loaded
    events = feed(rule, simulate("boiler_room", 1, HISTORY_MIN + 30, seed=1).values[0])
    assert events == []
    health = rule.health()
    assert health.state is DriverState.DEGRADED and "NaN" in (health.detail or "")
    assert health.counters["model_errors"] > 0 and health.counters["alarms"] == 0


@pytest.mark.parametrize("problem", ["missing", "other_features", "not_onnx"])
def test_a_model_that_cannot_load_is_a_health_flag(tmp_path: Path, problem: str) -> None:
    path = tmp_path / "model.onnx"
    if problem == "other_features":
        _broken_model(path, ["d_base", "z_base"], 1.0)
    elif problem == "not_onnx":
        path.write_text("not a model")
    rule = anomaly_rule(path)
    health = rule.health()
    assert health.state is DriverState.DOWN
    assert str(path) in (health.detail or "")
    if problem == "other_features":
        assert "z_low15" in (health.detail or "")  # names what this gateway computes
    assert feed(rule, np.full(HISTORY_MIN + 10, 90.0)) == []


def test_without_onnxruntime_the_thresholds_still_fire_and_health_says_why(
        tmp_path: Path) -> None:
    rules = json.dumps([
        {"type": "temperature_anomaly", "model": str(MODEL)},
        {"type": "over_temperature", "threshold": 60},
    ])
    probe = f"""
import sys, json
sys.modules["onnxruntime"] = None  # as on a gateway installed without the extra
from datetime import UTC, datetime
from pydantic import TypeAdapter
from gridsense_edge.rules import RULES
from gridsense_protocol import Reading
configs = TypeAdapter(list[RULES.config_union()]).validate_python(json.loads({rules!r}))
rules = [RULES.get(c.type).factory(c) for c in configs]
hot = Reading(point="gw.boiler", metric="temperature", value=75.0, unit="°C",
              ts=datetime(2026, 12, 1, tzinfo=UTC))
print(json.dumps({{"types": [e.type for r in rules for e in r.feed(hot)],
                  "health": rules[0].health().model_dump(mode="json")}}))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["types"] == ["over_temperature"]
    assert out["health"]["state"] == "down" and "onnxruntime" in out["health"]["detail"]
    assert "temperature_anomaly" in RULES.types()


def test_a_restart_keeps_the_baseline_so_the_model_is_not_blind_for_a_day(
    tmp_path: Path,
) -> None:
    batch = scenario("pump_room", "flaming_fire", 1, seed=4242)
    row = batch.values[0]
    onset = int(batch.onset[0])
    restart = (HISTORY_MIN + 60) // SAVE_EVERY_MIN * SAVE_EVERY_MIN + 1  # just after a save
    assert HISTORY_MIN < restart < onset
    history_dir = tmp_path / "state" / "temperature_history"

    def rule() -> TemperatureAnomaly:
        return TemperatureAnomaly(TemperatureAnomalyConfig(
            type="temperature_anomaly", model=MODEL, history_dir=history_dir))

    uninterrupted = feed(anomaly_rule(), row)
    before = rule()
    feed(before, row, stop=restart)
    assert before.health().counters["history_saved"] > 0
    after = rule()  # the agent restarted: a new rule, the same folder
    resumed = feed(after, row, start=restart)
    assert after.counters["warming_up"] == 0  # no day of silence
    assert after.health().counters["history_loaded"] == 1
    assert resumed == [(t, state) for t, state in uninterrupted if t >= restart]
    assert first_active(resumed, onset) is not None

    # Without the file (or with a damaged one) the point starts its day again.
    (history_dir / "gw-t1.room.history").write_bytes(b"GSTH\x01\x00 truncated")
    damaged = rule()
    events = feed(damaged, row, start=restart)
    assert damaged.health().counters["history_errors"] == 1
    assert damaged.counters["warming_up"] > 0  # a fresh day: silent at first
    assert all(t >= restart + HISTORY_MIN for t, _ in events)


def test_the_history_folder_defaults_to_the_gateways_state_dir(tmp_path: Path) -> None:
    config = GatewayConfig.model_validate({
        "gateway": {"id": "gw-t1", "state_dir": str(tmp_path / "state")},
        "rules": [{"type": "temperature_anomaly", "model": str(MODEL)}],
    }, context={})  # as load_config validates: one context shared by the whole tree
    [anomaly] = config.rules
    assert anomaly.history_dir == tmp_path / "state" / "temperature_history"
