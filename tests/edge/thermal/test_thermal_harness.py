"""The evaluation harness drives the edge's real rule classes and measures what they do."""

from __future__ import annotations

import math

import numpy as np
from temperature_anomaly.detectors import ROOM_LIMIT_C
from temperature_anomaly.evaluate import detections, false_alarms, judged_pairs, markdown
from temperature_anomaly.events import FAMILIES, HELD_OUT_FAMILIES
from temperature_anomaly.rooms import HELD_OUT_ROOMS
from temperature_anomaly.simulator import scenario


def _second_reading_above(row: np.ndarray, start: int, limit: float) -> int | None:
    """Where over_temperature (min_duration 5 s) fires on one reading a minute: the second
    finite reading in a row above the limit."""
    previous_above = False
    for t in range(start, len(row)):
        if not math.isfinite(row[t]):
            continue
        above = row[t] > limit
        if above and previous_above:
            return t
        previous_above = above
    return None


def test_threshold_delays_are_where_the_series_crosses_the_limit() -> None:
    tally = detections("pump_room", "flaming_fire", 6, None, seed=77)
    batch = scenario("pump_room", "flaming_fire", 6, seed=77)
    assert tally.delays is not None
    for i, onset in enumerate(batch.onset):
        expected = _second_reading_above(batch.values[i], int(onset) - 30, ROOM_LIMIT_C)
        assert expected is not None and expected - onset <= FAMILIES["flaming_fire"].horizon_min
        assert tally.delays["threshold"][i] == expected - onset
        # a flaming fire climbs faster than 8 °C/min: the rate rule sees it no later
        assert tally.delays["threshold+rate"][i] <= tally.delays["threshold"][i]


def test_a_slow_overheat_is_missed_by_a_60_degree_limit_and_counted_as_missed() -> None:
    tally = detections("pump_room", "pump_overheat", 4, None, seed=3)
    assert tally.delays is not None
    assert all(math.isnan(d) for d in tally.delays["threshold"])
    summary = tally.as_dict()["threshold"]
    assert summary == {"n": 4, "recall": 0.0, "median_min": None, "p90_min": None}


def test_quiet_weeks_count_false_alarms_per_sensor_week() -> None:
    rooms = false_alarms("boiler_room", 3, None, seed=5)
    assert rooms.sensor_weeks == 3 and rooms.false_alarms == {
        "threshold": 0, "rate": 0, "threshold+rate": 0}
    fridges = false_alarms("vaccine_fridge", 3, None, seed=5)
    assert fridges.false_alarms is not None and set(fridges.false_alarms) == {"threshold"}
    assert "fridges" not in markdown({"detection": {}, "false_alarms": {
        "rooms": rooms.as_dict()}})


def test_every_judged_scenario_is_held_out_by_room_or_family() -> None:
    pairs = judged_pairs()
    assert all(room in HELD_OUT_ROOMS or family in HELD_OUT_FAMILIES for room, family in pairs)
    assert {room for room, _ in pairs} >= set(HELD_OUT_ROOMS)
    assert {family for _, family in pairs} >= set(HELD_OUT_FAMILIES)
    assert all(family in {f for r, f in pairs if r in HELD_OUT_ROOMS}
               for family in FAMILIES if set(FAMILIES[family].rooms) & set(HELD_OUT_ROOMS))
