"""Rules are pure: readings with device timestamps in, incident events out. No I/O, no clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from gridsense_edge.rules import RULES
from gridsense_edge.rules.over_temperature import OverTemperature, OverTemperatureConfig
from gridsense_edge.rules.rapid_rise import RapidRise, RapidRiseConfig
from gridsense_protocol import AlarmState, Reading, Severity

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def reading(
    value: float, at_s: float, point: str = "gw-01.boiler", metric: str = "temperature"
) -> Reading:
    ts = T0 + timedelta(seconds=at_s)
    return Reading(point=point, metric=metric, value=value, unit="°C", ts=ts)


def over(**kwargs: object) -> OverTemperature:
    fields = {"type": "over_temperature", "threshold": 60, "hysteresis": 2, "min_duration_s": 5}
    fields.update(kwargs)
    return OverTemperature(OverTemperatureConfig.model_validate(fields))


def feed_all(rule: OverTemperature | RapidRise, samples: list[Reading]) -> list:
    return [event for sample in samples for event in rule.feed(sample)]


def test_over_temperature_fires_once_after_the_minimum_duration_on_device_time() -> None:
    rule = over()
    assert rule.feed(reading(61, 0)) == []
    assert rule.feed(reading(62, 4.9)) == []
    [event] = rule.feed(reading(63, 5.0))
    assert (event.type, event.state) == ("over_temperature", AlarmState.ACTIVE)
    assert event.point == "gw-01.boiler"
    assert event.value == 63 and event.threshold == 60 and event.severity is Severity.MAJOR
    assert event.ts == T0 + timedelta(seconds=5)  # the reading's time, not the evaluation's
    assert event.details["above_for_s"] == 5.0
    # Staying hot does not repeat the incident.
    assert feed_all(rule, [reading(70, t) for t in range(6, 60)]) == []


def test_a_dip_to_the_threshold_restarts_the_duration() -> None:
    rule = over()
    events = feed_all(rule, [reading(61, 0), reading(61, 3), reading(60, 4), reading(61, 6)])
    assert events == []
    assert rule.feed(reading(61, 10.9)) == []
    assert [e.state for e in rule.feed(reading(61, 11))] == [AlarmState.ACTIVE]


def test_hysteresis_clears_only_below_threshold_minus_hysteresis() -> None:
    rule = over(min_duration_s=0)
    assert [e.state for e in rule.feed(reading(65, 0))] == [AlarmState.ACTIVE]
    # Between 58 and 60: still active, no flapping.
    assert feed_all(rule, [reading(59, 1), reading(58, 2), reading(61, 3), reading(58.5, 4)]) == []
    [cleared] = rule.feed(reading(57.9, 5))
    assert cleared.state is AlarmState.CLEARED and cleared.value == 57.9
    # A new excursion raises a new incident.
    assert [e.state for e in rule.feed(reading(66, 6))] == [AlarmState.ACTIVE]


def test_points_are_independent_and_globs_select_them() -> None:
    rule = over(min_duration_s=0, points=["gw-01.boil*"])
    assert rule.feed(reading(99, 0, point="gw-01.pipe")) == []
    assert len(rule.feed(reading(99, 0, point="gw-01.boiler"))) == 1
    assert len(rule.feed(reading(99, 0, point="gw-01.boiler2"))) == 1
    assert rule.feed(reading(99, 1, point="gw-01.boiler")) == []


def test_other_metrics_are_ignored() -> None:
    rule = over(min_duration_s=0)
    assert rule.feed(reading(95, 0, metric="humidity")) == []


def test_readings_older_than_the_last_are_ignored() -> None:
    rule = over(min_duration_s=5)
    rule.feed(reading(61, 10))
    assert rule.feed(reading(61, 0)) == []  # older: cannot make the excursion look longer
    assert rule.feed(reading(61, 14)) == []
    assert len(rule.feed(reading(61, 15))) == 1


def rise(**kwargs: object) -> RapidRise:
    fields = {"type": "rapid_rise", "rate_per_min": 8, "window_s": 60}
    fields.update(kwargs)
    return RapidRise(RapidRiseConfig.model_validate(fields))


def test_rapid_rise_fires_on_a_steep_ramp_and_clears_when_it_levels_off() -> None:
    rule = rise()
    flat = [reading(22.0, t) for t in range(0, 60)]
    assert feed_all(rule, flat) == []
    # 12 °C per minute from t=60.
    ramp = [reading(22.0 + 0.2 * (t - 59), t) for t in range(60, 150)]
    events = feed_all(rule, ramp)
    assert [e.state for e in events] == [AlarmState.ACTIVE]
    active = events[0]
    assert active.type == "rapid_rise" and active.severity is Severity.CRITICAL
    assert active.value >= 8 and active.threshold == 8 and active.unit == "°C/min"
    plateau = [reading(40.0, t) for t in range(150, 260)]
    events = feed_all(rule, plateau)
    assert [e.state for e in events] == [AlarmState.CLEARED]


def test_rapid_rise_ignores_noise_and_slow_drift() -> None:
    rng = random.Random(7)
    rule = rise()
    noisy = [reading(22 + rng.uniform(-0.5, 0.5), t) for t in range(0, 600)]
    assert feed_all(rule, noisy) == []
    drift = [reading(22 + 0.05 * (t - 600), t) for t in range(600, 900)]  # 3 °C/min
    assert feed_all(rule, drift) == []


def test_rapid_rise_waits_for_half_a_window_of_samples() -> None:
    rule = rise(window_s=60)
    steep = [reading(20 + t, t) for t in range(0, 29)]  # 60 °C/min, but only 28 s of data
    assert feed_all(rule, steep) == []
    assert [e.state for e in rule.feed(reading(50, 30))] == [AlarmState.ACTIVE]


def test_rules_are_created_from_the_registry() -> None:
    assert set(RULES.types()) >= {"over_temperature", "rapid_rise"}
    config = OverTemperatureConfig.model_validate({"type": "over_temperature", "threshold": 1})
    assert isinstance(RULES.get("over_temperature").factory(config), OverTemperature)
