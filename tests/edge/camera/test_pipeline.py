"""The whole in-process pipeline on rendered videos: decode, motion, crops, inference in each
output layout, decoding, NMS, tracking, zones and rules, against the known ground truth."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
from camera_support import frames_of, make_pipeline

from gridsense_devtools.camera import BOX_BGR, ZONE_BGR, has_colour
from gridsense_edge.drivers.camera.geometry import iou
from gridsense_edge.drivers.camera.pipeline import CameraIncident
from gridsense_edge.simulator.video import intrusion_scenario, write_video
from gridsense_protocol import AlarmState

RIGHT_HALF = {"restricted": [(160, 0), (320, 0), (320, 240), (160, 240)]}


@pytest.fixture(scope="module")
def intrusion_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "intrusion.avi", intrusion_scenario())


@pytest.mark.parametrize("layout", ["yolo", "yolox", "ssd"])
def test_tracks_follow_ground_truth_and_intrusion_fires_once(
    layout: str, models: dict[str, Path], intrusion_video: Path
) -> None:
    scenario = intrusion_scenario()
    pipeline = make_pipeline(models[layout], RIGHT_HALF,
                             [{"type": "intrusion", "zone": "restricted"}])
    incidents: list[CameraIncident] = []
    matched = compared = 0
    for frame in frames_of(intrusion_video):
        incidents += [o for o in pipeline.process(frame) if isinstance(o, CameraIncident)]
        for label, truth in scenario.ground_truth(frame.t):
            tracks = [t for t in pipeline.tracker.tracks.values() if t.label == label
                      and t.last_t == frame.t]
            if frame.t >= 1.0:  # after the first frames (the background is being learnt)
                compared += 1
                matched += any(iou(t.box, truth) > 0.6 for t in tracks)
    assert compared > 50
    assert matched / compared > 0.8, f"{matched}/{compared} ground-truth boxes tracked"
    persons = {t.id for t in pipeline.tracker.tracks.values() if t.label == "person"}
    assert len(persons) == 1  # one stable id for the one person
    active = [i for i in incidents if i.outcome.state is AlarmState.ACTIVE]
    assert [i.outcome.type for i in active] == ["intrusion"]
    # It fired when the person's feet crossed x=160 (around t = 0.5 + 2.5 * 125/200 s).
    assert 1.5 < (active[0].ts - frames_of_origin(intrusion_video)).total_seconds() < 3.2
    assert active[0].outcome.boxes[0][1] == "person"
    image = cv2.imdecode(np.frombuffer(active[0].snapshot or b"", np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[:2] == (240, 320)
    # the zone's amber outline on its left edge and the red box of the person are drawn
    assert has_colour(image[:, 157:163], ZONE_BGR)
    x1, y1, x2, _y2 = (int(v) for v in active[0].outcome.boxes[0][2])
    assert has_colour(image[max(0, y1 - 2):y1 + 2, x1:x2], BOX_BGR)


def frames_of_origin(video: Path):  # type: ignore[no-untyped-def]
    return next(frames_of(video)).ts


def test_every_layout_gives_the_same_class_score_box_contract(models: dict[str, Path]) -> None:
    from gridsense_edge.drivers.camera.detectors.runtime import OnnxDetector
    from gridsense_edge.simulator.video import background, render_frame

    scenario = intrusion_scenario()
    frame = render_frame(scenario, 2.0, background(scenario))
    crop = np.full((320, 320, 3), 114, np.uint8)
    crop[:240] = frame
    results = {}
    for layout, model in models.items():
        found = OnnxDetector(model).detect(crop)
        results[layout] = sorted((d.label, round(d.score, 2), tuple(round(v) for v in d.box))
                                 for d in found)
    assert results["yolo"] == results["yolox"] == results["ssd"], results
    truth = sorted(scenario.ground_truth(2.0))
    assert [label for label, _, _ in results["yolo"]] == [label for label, _ in truth]
    for (_, _, box), (_, true_box) in zip(results["yolo"], truth, strict=True):
        assert iou(box, true_box) > 0.8


def test_cameras_with_the_same_model_share_one_session(models: dict[str, Path],
                                                      tmp_path: Path) -> None:
    import gc
    import os
    import shutil

    from gridsense_edge.drivers.camera.detectors import runtime
    from gridsense_edge.drivers.camera.detectors.card import card_path

    first, second = runtime.OnnxDetector(models["yolo"]), runtime.OnnxDetector(models["yolo"])
    assert first.session is second.session
    assert runtime.OnnxDetector(models["yolo"], threads=2).session is not first.session
    assert runtime.OnnxDetector(models["ssd"]).session is not first.session
    # The same file replaced on disk (an operator's new export) is loaded afresh.
    copy = tmp_path / models["yolo"].name
    shutil.copy(models["yolo"], copy)
    card = card_path(models["yolo"])
    shutil.copy(card, tmp_path / card.name)
    old = runtime.OnnxDetector(copy)
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # rewritten later
    assert runtime.OnnxDetector(copy).session is not old.session
    del first, second, old
    gc.collect()  # no detector uses the yolo session any more: it is gone from the cache
    assert not any(key[0] == str(models["yolo"].resolve()) for key in runtime._sessions)


def test_a_sudden_global_change_recalibrates_instead_of_detecting(
    models: dict[str, Path], tmp_path: Path
) -> None:
    from gridsense_edge.simulator.video import VideoScenario

    # No figure at all; the picture brightens at once (an IR switch) and back.
    video = write_video(tmp_path / "flash.avi",
                        VideoScenario(duration_s=4.0, flashes=[(1.5, 2.5, 70)]))
    pipeline = make_pipeline(models["yolo"], RIGHT_HALF, [{"type": "intrusion"}])
    outputs = [o for frame in frames_of(video) for o in pipeline.process(frame)]
    assert pipeline.motion.recalibrations == 2  # on and off
    assert pipeline.counters["detector_runs"] == 0
    assert [o for o in outputs if isinstance(o, CameraIncident)] == []


def test_a_stationary_object_is_rechecked_every_n_frames_not_every_frame(
    models: dict[str, Path], tmp_path: Path
) -> None:
    from gridsense_edge.simulator.video import VideoScenario, walk

    scene = VideoScenario(duration_s=8.0, figures=[
        walk("car", (10, 150, 70, 180), (200, 150, 260, 180), 0.2, 1.0, 8.0)])
    video = write_video(tmp_path / "parked.avi", scene)
    pipeline = make_pipeline(models["yolo"], RIGHT_HALF, [], recheck_every=10)
    runs_at: list[int] = []
    for frame in frames_of(video):
        before = pipeline.counters["detector_runs"]
        pipeline.process(frame)
        if pipeline.counters["detector_runs"] > before and frame.t > 4.0:
            runs_at.append(frame.index)
    # Long after it parked (the background has absorbed it), one look every 10 frames.
    assert runs_at and all(b - a == 10 for a, b in itertools.pairwise(runs_at))
    (car,) = pipeline.tracker.tracks.values()
    assert car.stationary_s(7.9) > 6
