"""The thermal simulator replays a scenario exactly and every onset family shows in the series."""

from __future__ import annotations

import numpy as np
import pytest
from temperature_anomaly.events import FAMILIES
from temperature_anomaly.rooms import ROOMS
from temperature_anomaly.simulator import DAY_MIN, scenario, simulate


@pytest.mark.parametrize("room", sorted(ROOMS))
def test_same_seed_same_series_other_seed_other_series(room: str) -> None:
    a = simulate(room, 4, 2 * DAY_MIN, seed=11)
    b = simulate(room, 4, 2 * DAY_MIN, seed=11)
    c = simulate(room, 4, 2 * DAY_MIN, seed=12)
    np.testing.assert_array_equal(a.values, b.values)  # NaN where both dropped out
    assert not np.allclose(np.nan_to_num(a.values), np.nan_to_num(c.values))
    finite = a.values[np.isfinite(a.values)]
    # a day of a sensor is not a flat line: cycles, sun, doors and noise move it
    assert np.ptp(finite) > 1.0
    assert np.isnan(a.values).mean() < 0.05


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_onset_changes_the_series_only_after_its_onset(family: str) -> None:
    fam = FAMILIES[family]
    room = fam.rooms[0]
    event = scenario(room, family, 6, seed=5)
    minutes = event.values.shape[1]
    quiet = simulate(room, 6, minutes, seed=5, onset=None)
    replay = scenario(room, family, 6, seed=5)
    np.testing.assert_array_equal(event.values, replay.values)
    for i, onset in enumerate(event.onset):
        assert 0 < onset < minutes - fam.horizon_min
        before = slice(0, onset)
        np.testing.assert_array_equal(event.values[i, before], quiet.values[i, before])
        after = event.values[i, onset:onset + fam.horizon_min]
        calm = quiet.values[i, onset:onset + fam.horizon_min]
        # every family heats its room by several degrees within its horizon
        assert np.nanmax(after - calm) > 3.0, (family, i)
