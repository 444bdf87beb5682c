"""One camera's processing thread: motion -> regions -> detector -> tracker -> rules -> JPEG."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from ...logs import log_event
from .capture import CaptureWorker, Frame
from .detectors.runtime import OnnxDetector
from .geometry import Detection
from .motion import MotionDetector, MotionSettings
from .nms import nms
from .regions import plan_regions
from .rules import CameraRule, RuleOutcome, Scene
from .snapshot import render
from .tracker import Tracker
from .worker import WorkerThread
from .zones import Zone

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    zones: dict[str, Zone]
    resolution: tuple[int, int]  # the frame size zones were drawn for
    count_threshold: float = 0.5  # an object counts when its median score passes this
    min_hits: int = 2
    recheck_every: int = 10  # frames between re-checks of a tracked object that stopped moving
    max_regions: int = 4
    snapshot_max_bytes: int = 256 * 1024
    report_interval_s: float = 10.0
    motion: MotionSettings = field(default_factory=MotionSettings)


@dataclass(frozen=True, slots=True)
class CameraIncident:
    outcome: RuleOutcome
    ts: datetime
    snapshot: bytes | None


@dataclass(frozen=True, slots=True)
class DetectionCount:
    ts: datetime
    count: int
    by_label: dict[str, int]


Output = CameraIncident | DetectionCount


class Pipeline(WorkerThread):
    role = "pipeline"

    def __init__(self, name: str, capture: CaptureWorker, detector: OnnxDetector,
                 rules: list[CameraRule], settings: PipelineSettings,
                 out: asyncio.Queue[Output], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(name)
        self.capture = capture
        self.detector = detector
        self.rules = rules
        self.settings = settings
        self.out = out
        self.loop = loop
        self.motion = MotionDetector(settings.motion)
        self.tracker = Tracker()
        self.counters = dict.fromkeys(("frames_out", "detector_runs", "detections",
                                       "frame_errors", "rule_errors"), 0)
        self.detect_ms = 0.0  # moving average per processed frame (all regions)
        self.process_ms = 0.0  # moving average of the whole per-frame work
        self._zones = settings.zones
        self._zones_for: tuple[int, int] | None = None
        self._last_report = -1e18
        self._times: list[float] = []

    @property
    def fps_out(self) -> float:
        times = self._times
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and \
            times[-1] > times[0] else 0.0

    def _run(self) -> None:
        import queue

        while not self._stop.is_set():
            try:
                frame = self.capture.frames.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                outputs = self.process(frame)
            except Exception as exc:  # one bad frame must not end the camera
                self.counters["frame_errors"] += 1
                log_event(log, "camera_frame_failed", logging.ERROR, exc_info=exc,
                          camera=self.name, frame=frame.index, error=repr(exc))
                continue
            for output in outputs:
                if not self._send(output):
                    return

    def _send(self, output: Output) -> bool:
        future = asyncio.run_coroutine_threadsafe(self.out.put(output), self.loop)
        while not self._stop.is_set():
            try:
                future.result(timeout=0.5)
                return True
            except TimeoutError:
                continue
        future.cancel()
        return False

    def _zones_for_frame(self, width: int, height: int) -> dict[str, Zone]:
        if self._zones_for != (width, height):
            rw, rh = self.settings.resolution
            self._zones = {name: zone.scaled(width / rw, height / rh) if (rw, rh) != (
                width, height) else zone for name, zone in self.settings.zones.items()}
            self._zones_for = (width, height)
        return self._zones

    def detect(self, image: np.ndarray, boxes: list[tuple[float, float, float, float]]
               ) -> tuple[list[Detection], list[tuple[float, float, float, float]]]:
        """Run the detector on the regions around ``boxes``; detections in frame pixels."""
        height, width = image.shape[:2]
        size = self.detector.input_size[0]
        regions = plan_regions(boxes, width, height, size, self.settings.max_regions)
        found: list[Detection] = []
        started = time.perf_counter()
        for region in regions:
            crop = region.crop(image, size)
            found += [d.shifted(region.x, region.y, region.scale)
                      for d in self.detector.detect(crop)]
            self.counters["detector_runs"] += 1
        if len(regions) > 1 and found:  # overlapping regions see the same object twice
            boxes_np = np.array([d.box for d in found], dtype=np.float32)
            offsets = np.array([d.class_id for d in found], dtype=np.float32)[:, None] * 1e5
            scores = np.array([d.score for d in found], dtype=np.float32)
            found = [found[i] for i in nms(boxes_np + offsets, scores, 0.5)]
        elapsed = (time.perf_counter() - started) * 1000
        if regions:
            self.detect_ms = elapsed if not self.detect_ms else 0.8 * self.detect_ms + 0.2 * elapsed
        checked = [(float(r.x), float(r.y), float(r.x + r.side), float(r.y + r.side))
                   for r in regions]
        return found, checked

    def process(self, frame: Frame) -> list[Output]:
        started = time.perf_counter()
        s = self.settings
        image = frame.image
        height, width = image.shape[:2]
        zones = self._zones_for_frame(width, height)
        motion = self.motion.update(image)
        due = self.tracker.due_for_check(s.recheck_every)
        boxes = motion.boxes + [t.box for t in due]
        detections, checked = self.detect(image, boxes) if boxes else ([], [])
        self.counters["detections"] += len(detections)
        tracks = self.tracker.update(detections, frame.t, checked)
        counted = [t for t in tracks if t.hits >= s.min_hits
                   and t.median_score >= s.count_threshold]
        scene = Scene(frame.t, frame.ts, counted, zones, (width, height))
        outputs: list[Output] = []
        for rule in self.rules:
            try:
                outcome = rule.evaluate(scene)
            except Exception as exc:
                self.counters["rule_errors"] += 1
                log_event(log, "camera_rule_failed", logging.ERROR, camera=self.name,
                          rule=type(rule).__name__, error=repr(exc))
                continue
            if outcome is None:
                continue
            snapshot = None
            if outcome.boxes:
                others = [(t.id, t.label, t.box) for t in counted]
                zone = zones.get(outcome.zone) if outcome.zone else None
                snapshot = render(image, zone, outcome.boxes, others, s.snapshot_max_bytes)
            outputs.append(CameraIncident(outcome, frame.ts, snapshot))
        if frame.t - self._last_report >= s.report_interval_s:
            self._last_report = frame.t
            by_label: dict[str, int] = {}
            for track in counted:
                by_label[track.label] = by_label.get(track.label, 0) + 1
            outputs.append(DetectionCount(frame.ts, len(counted), by_label))
        self.counters["frames_out"] += 1
        now = time.monotonic()
        self._times = [*self._times[-9:], now]
        elapsed = (time.perf_counter() - started) * 1000
        self.process_ms = elapsed if not self.process_ms else 0.8 * self.process_ms + 0.2 * elapsed
        return outputs
