"""Small pieces with exact answers: snapshot size bound, schedules, zones, regions."""

from __future__ import annotations

from datetime import datetime, time

import cv2
import numpy as np

from gridsense_edge.drivers.camera.regions import plan_regions
from gridsense_edge.drivers.camera.rules.base import ScheduleWindow
from gridsense_edge.drivers.camera.snapshot import render
from gridsense_edge.drivers.camera.zones import Zone


def test_a_snapshot_fits_its_byte_bound_and_still_decodes() -> None:
    noise = np.random.default_rng(1).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    zone = Zone("z", ((100, 100), (600, 100), (600, 600)))
    for bound in (400_000, 60_000, 20_000):
        jpeg = render(noise, zone, [(1, "person", (200, 200, 260, 380))], [], bound)
        assert len(jpeg) <= bound
        assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) is not None


def test_schedules_in_local_time_including_across_midnight() -> None:
    night = ScheduleWindow(days=["fri"], start=time(22, 0), end=time(6, 0))
    friday = datetime(2026, 1, 9, 23, 30).astimezone()  # a Friday, local time
    assert night.covers(friday)
    assert night.covers(datetime(2026, 1, 10, 5, 59).astimezone())  # Saturday morning
    assert not night.covers(datetime(2026, 1, 10, 6, 1).astimezone())
    assert not night.covers(datetime(2026, 1, 8, 23, 30).astimezone())  # Thursday night


def test_zone_membership_is_by_the_bottom_centre_of_the_box() -> None:
    floor = Zone("floor", ((0, 200), (320, 200), (320, 240), (0, 240)))
    assert floor.contains((100, 50, 130, 210))  # tall box, feet inside
    assert not floor.contains((100, 150, 130, 199))  # head in, feet out


def test_regions_are_model_sized_squares_inside_the_frame() -> None:
    regions = plan_regions([(10, 10, 40, 60), (600, 400, 630, 470)], 640, 480, 320)
    assert len(regions) == 2
    for region in regions:
        assert region.side == 320 and region.scale == 1.0
        assert 0 <= region.x <= 640 - 320 and 0 <= region.y <= 480 - 320
    (merged,) = plan_regions([(10, 10, 40, 60), (100, 100, 140, 160)], 640, 480, 320)
    assert merged.contains((10, 10, 40, 60)) and merged.contains((100, 100, 140, 160))
    (big,) = plan_regions([(0, 0, 600, 470)], 640, 480, 320)
    assert big.side >= 470 and big.scale < 1.0  # larger than the input: scaled down to it
