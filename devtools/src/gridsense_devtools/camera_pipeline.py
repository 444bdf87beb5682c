"""The camera pipeline fed by hand from a rendered video: what the camera tests and the camera
rules harness (models/detectors/harness.py) both run, as the gateway runs it (OpenCV decode,
motion, onnxruntime, tracker, rules) without its threads."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2

from gridsense_edge.drivers.camera.capture import CaptureSettings, CaptureWorker, Frame
from gridsense_edge.drivers.camera.detectors.runtime import OnnxDetector
from gridsense_edge.drivers.camera.pipeline import Pipeline, PipelineSettings
from gridsense_edge.drivers.camera.rules import CAMERA_RULES
from gridsense_edge.drivers.camera.zones import Zone

ORIGIN = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def frames_of(video: Path) -> Iterator[Frame]:
    """Every frame of a file with its time in the file (what a non-realtime capture yields)."""
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    index = 0
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                return
            t = index / fps
            yield Frame(image, t, ORIGIN + timedelta(seconds=t), index)
            index += 1
    finally:
        capture.release()


def make_pipeline(model: Path, zones: dict[str, list[tuple[float, float]]],
                  rules: list[dict[str, object]], resolution: tuple[int, int] = (320, 240),
                  **settings: object) -> Pipeline:
    """A pipeline to feed frames by hand (its threads are not started)."""
    loop = asyncio.new_event_loop()
    rule_objects = []
    for raw in rules:
        plugin = CAMERA_RULES.get(str(raw["type"]))
        rule_objects.append(plugin.factory(plugin.config_model.model_validate(raw)))
    return Pipeline(
        "test", CaptureWorker("test", CaptureSettings(source="unused")),
        OnnxDetector(model), rule_objects,
        PipelineSettings(zones={n: Zone(n, tuple(p)) for n, p in zones.items()},
                         resolution=resolution, **settings),  # type: ignore[arg-type]
        asyncio.Queue(), loop,
    )
