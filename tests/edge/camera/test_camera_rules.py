"""Every camera rule on a rendered video whose ground truth decides it, with a control scene
that must stay quiet. The pipeline is the real one (OpenCV decode, motion, onnxruntime)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from camera_support import frames_of, make_pipeline

from gridsense_edge.drivers.camera.pipeline import CameraIncident
from gridsense_edge.simulator.video import Figure, VideoScenario, walk, write_video
from gridsense_protocol import AlarmState

RIGHT = {"zone": [(160, 0), (320, 0), (320, 240), (160, 240)]}


def still(label: str, box: tuple[float, float, float, float], t0: float, t1: float) -> Figure:
    return Figure(label, [(t0, box), (t1, box)])


def _person_to(i: int, of: int) -> Figure:
    """Person ``i`` of a group walking into the zone, 45 px apart (the synthetic detector's
    moment window spans 88 px: objects of one class closer than ~44 px blend)."""
    top = 94 * i
    return walk("person", (20, top, 44, top + 48), (190 + 40 * i, top, 214 + 40 * i, top + 48),
                0.3, 1.5, 5.0)


CASES: dict[str, tuple[dict[str, Any], list[Figure], list[Figure], float]] = {
    # rule config, figures that must trigger it, control figures that must not, duration
    "loitering": (
        {"type": "loitering", "zone": "zone", "dwell_s": 2.0},
        [walk("person", (40, 100, 64, 160), (220, 100, 244, 160), 0.3, 1.5, 6.0)],
        [walk("person", (40, 100, 64, 160), (220, 100, 244, 160), 0.3, 1.5),
         walk("person", (220, 100, 244, 160), (40, 100, 64, 160), 1.6, 2.4, 6.0)],
        6.0,
    ),
    "crowd": (
        {"type": "crowd", "zone": "zone", "min_count": 3, "for_s": 1.0},
        [_person_to(i, 3) for i in range(3)],
        [_person_to(i, 3) for i in range(2)],
        5.0,
    ),
    "ebike_in_elevator": (
        {"type": "ebike_in_elevator", "zone": "zone"},
        [walk("bicycle", (20, 150, 70, 190), (220, 150, 270, 190), 0.3, 2.0, 4.0)],
        [walk("person", (20, 130, 44, 190), (220, 130, 244, 190), 0.3, 2.0, 4.0)],
        4.0,
    ),
    "fire_lane_blocked": (
        {"type": "fire_lane_blocked", "zone": "zone", "for_s": 2.0},
        [walk("car", (10, 150, 70, 180), (200, 150, 260, 180), 0.3, 1.5, 6.0)],
        [walk("car", (10, 150, 70, 180), (250, 150, 310, 180), 0.3, 5.5)],
        6.0,
    ),
    "person_down": (
        {"type": "person_down", "zone": "zone", "for_s": 1.0},
        # walks in, stands, falls over half a second (a person does not teleport to the floor:
        # the tracker must keep the id through the fall for the rule to see it was upright)
        [Figure("person", [(0.3, (40, 120, 64, 180)), (1.5, (200, 120, 224, 180)),
                           (2.5, (200, 120, 224, 180)), (3.0, (180, 160, 240, 180)),
                           (6.0, (180, 160, 240, 180))])],
        [walk("person", (40, 120, 64, 180), (200, 120, 224, 180), 0.3, 1.5, 6.0)],
        6.0,
    ),
}


def _run(tmp: Path, model: Path, rule: dict[str, Any], figures: list[Figure], duration: float
         ) -> list[CameraIncident]:
    video = write_video(tmp / "scene.avi", VideoScenario(duration_s=duration, figures=figures))
    pipeline = make_pipeline(model, RIGHT, [rule])
    out: list[CameraIncident] = []
    for frame in frames_of(video):
        out += [o for o in pipeline.process(frame) if isinstance(o, CameraIncident)]
    return out


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_fires_on_its_scene_and_not_on_the_control(
    rule: str, models: dict[str, Path], tmp_path: Path
) -> None:
    config, positive, control, duration = CASES[rule]
    fired = _run(tmp_path / "positive", models["yolo"], config, positive, duration)
    active = [i for i in fired if i.outcome.state is AlarmState.ACTIVE]
    assert [i.outcome.type for i in active] == [rule], fired
    assert active[0].snapshot and active[0].snapshot.startswith(b"\xff\xd8")
    quiet = _run(tmp_path / "control", models["yolo"], config, control, duration)
    assert [i for i in quiet if i.outcome.state is AlarmState.ACTIVE] == []


def test_intrusion_clears_after_the_person_left(models: dict[str, Path], tmp_path: Path) -> None:
    figures = [walk("person", (40, 100, 64, 160), (220, 100, 244, 160), 0.3, 1.5),
               walk("person", (220, 100, 244, 160), (20, 100, 44, 160), 1.6, 2.4, 6.0)]
    fired = _run(tmp_path, models["ssd"], {"type": "intrusion", "zone": "zone",
                                           "clear_after_s": 1.0}, figures, 6.0)
    assert [i.outcome.state for i in fired] == [AlarmState.ACTIVE, AlarmState.CLEARED]
    assert fired[1].snapshot is None
