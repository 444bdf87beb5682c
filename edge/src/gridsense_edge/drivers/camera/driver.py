"""Cameras: capture, motion-gated ONNX detection, tracking, zones and rules -> incidents."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from gridsense_protocol import DriverHealth, DriverState, Reading

from ...configtypes import Identifier, ResolvedPath, context_of
from ...events import IncidentEvent
from ...logs import log_event
from ..base import DRIVERS, DeviceConfigBase, Driver, DriverContext
from .rules import CAMERA_RULES
from .rules.base import CAMERA_LABELS, CAMERA_ZONES
from .zones import Zone

if TYPE_CHECKING:
    from .capture import CaptureWorker
    from .pipeline import Output, Pipeline

log = logging.getLogger(__name__)

CameraRuleConfig = CAMERA_RULES.config_union()
OUTPUT_QUEUE = 64



_NOT_TAG_SAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def class_tag(label: str) -> str:
    """A model's label as the ``class`` tag of its detections: model cards may name classes
    with spaces ("traffic light"), which the protocol's tag values do not take."""
    return _NOT_TAG_SAFE.sub("_", label)[:48]

class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetectorSection(_Section):
    model: ResolvedPath  # an ONNX file with <name>.card.yaml beside it
    threads: Annotated[int, Field(ge=1, le=16)] = 1
    score_threshold: Annotated[float, Field(gt=0, lt=1)] = 0.4
    iou_threshold: Annotated[float, Field(gt=0, lt=1)] = 0.45
    count_threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5  # median score to count

    @field_validator("model")
    @classmethod
    def _model_and_card(cls, value: Path, info: ValidationInfo) -> Path:
        from .detectors import load_card  # numpy and the decoders: cameras only

        if not value.is_file():
            raise ValueError(f"model file {value} not found (the operator supplies it; see "
                             "models/detectors/README.md)")
        try:
            card = load_card(value)
        except (OSError, ValueError) as exc:
            raise ValueError(str(exc).replace("\n", "; ")) from None
        context_of(info)[CAMERA_LABELS] = list(card.labels)
        return value


class MotionSection(_Section):
    threshold: Annotated[int, Field(ge=1, le=255)] = 25
    min_area: Annotated[float, Field(gt=0, lt=1)] = 0.001
    recalibrate_above: Annotated[float, Field(gt=0, le=1)] = 0.45


CAMERA_RESOLUTION = "camera_resolution"  # validation context: this camera's frame size


class ZoneConfig(_Section):
    name: Identifier
    polygon: Annotated[list[tuple[float, float]], Field(min_length=3, max_length=64)]

    @field_validator("polygon")
    @classmethod
    def _inside_frame(cls, value: list[tuple[float, float]], info: ValidationInfo
                      ) -> list[tuple[float, float]]:
        resolution = context_of(info).get(CAMERA_RESOLUTION)
        if resolution is not None:
            width, height = resolution
            for x, y in value:
                if not (0 <= x <= width and 0 <= y <= height):
                    raise ValueError(
                        f"point ({x:g}, {y:g}) lies outside the {width}x{height} frame "
                        "(zones are in pixels of `resolution`)")
        return value

    def zone(self) -> Zone:
        return Zone(self.name, tuple(self.polygon))


class CameraConfig(DeviceConfigBase):
    type: Literal["camera"]
    source: str | int  # rtsp://..., http://... (MJPEG), a video file, or a USB index
    # The frame size zones are drawn in (frames of another size get the zones scaled).
    resolution: tuple[Annotated[int, Field(ge=16, le=8192)], Annotated[int, Field(ge=16,
                                                                                le=8192)]]
    fps: Annotated[float, Field(gt=0, le=60)] = 5.0
    realtime: bool = True  # a file source: pace it in real time (false: as fast as processed)
    loop: bool = False  # a file source: start again at its end
    watchdog_s: Annotated[float, Field(ge=1, le=600)] = 10.0
    reconnect_max_s: Annotated[float, Field(ge=1, le=3600)] = 60.0
    detector: DetectorSection
    motion: MotionSection = MotionSection()
    recheck_every: Annotated[int, Field(ge=1, le=1000)] = 10
    snapshot_max_kb: Annotated[int, Field(ge=16, le=1000)] = 256
    report_interval_s: Annotated[float, Field(ge=1, le=3600)] = 10.0
    zones: list[ZoneConfig] = Field(default_factory=list)
    rules: list[CameraRuleConfig] = Field(default_factory=list)  # type: ignore[valid-type]

    @field_validator("source")
    @classmethod
    def _source(cls, value: str | int, info: ValidationInfo) -> str | int:
        if isinstance(value, int) or "://" in value:
            return value
        from ...configtypes import resolve_path

        return str(resolve_path(Path(value), info))  # a file: relative to the config file

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, value: tuple[int, int], info: ValidationInfo) -> tuple[int, int]:
        context_of(info)[CAMERA_RESOLUTION] = value  # the zones below are checked against it
        return value

    @field_validator("zones")
    @classmethod
    def _zone_names(cls, value: list[ZoneConfig], info: ValidationInfo) -> list[ZoneConfig]:
        names = [z.name for z in value]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"zone {name!r} is defined twice")
        context_of(info)[CAMERA_ZONES] = set(names)
        return value


class CameraDriver:
    def __init__(self, config: CameraConfig, ctx: DriverContext) -> None:
        self.config = config
        self.ctx = ctx
        self.name = f"camera/{config.point}"
        self.counters = dict.fromkeys(("incidents", "snapshots", "model_errors"), 0)
        self.state = "starting"
        self.detail: str | None = None
        self.capture: CaptureWorker | None = None
        self.pipeline: Pipeline | None = None

    def _build(self, out: asyncio.Queue[Output], loop: asyncio.AbstractEventLoop) -> Pipeline:
        """Blocking (loads the model): runs in a worker thread."""
        from .capture import CaptureSettings, CaptureWorker
        from .detectors.runtime import OnnxDetector
        from .motion import MotionSettings
        from .pipeline import Pipeline, PipelineSettings

        c = self.config
        detector = OnnxDetector(c.detector.model, threads=c.detector.threads,
                                score_threshold=c.detector.score_threshold,
                                iou_threshold=c.detector.iou_threshold)
        capture = CaptureWorker(c.point, CaptureSettings(
            source=c.source, fps=c.fps, realtime=c.realtime, loop=c.loop,
            watchdog_s=c.watchdog_s, reconnect_max_s=c.reconnect_max_s))
        settings = PipelineSettings(
            zones={z.name: z.zone() for z in c.zones}, resolution=c.resolution,
            count_threshold=c.detector.count_threshold, recheck_every=c.recheck_every,
            snapshot_max_bytes=c.snapshot_max_kb * 1024, report_interval_s=c.report_interval_s,
            motion=MotionSettings(threshold=c.motion.threshold, min_area=c.motion.min_area,
                                  recalibrate_above=c.motion.recalibrate_above),
        )
        rules = [CAMERA_RULES.get(r.type).factory(r) for r in c.rules]
        return Pipeline(c.point, capture, detector, rules, settings, out, loop)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        out: asyncio.Queue[Output] = asyncio.Queue(OUTPUT_QUEUE)
        try:
            pipeline = await asyncio.to_thread(self._build, out, loop)
        except Exception as exc:  # a corrupt model, a card that does not match it
            self.counters["model_errors"] += 1
            self.state, self.detail = "error", str(exc)[:500]
            log_event(log, "camera_model_failed", logging.ERROR, point=self.config.point,
                      model=str(self.config.detector.model), error=str(exc)[:300])
            raise
        self.pipeline, self.capture = pipeline, pipeline.capture
        self.state, self.detail = "running", None
        pipeline.capture.start()
        pipeline.start()
        log_event(log, "camera_started", point=self.config.point, source=str(self.config.source),
                  model=str(self.config.detector.model), zones=len(self.config.zones),
                  rules=len(self.config.rules))
        try:
            while True:
                self._handle(await out.get())
        finally:
            await asyncio.to_thread(self._stop_threads, pipeline)

    @staticmethod
    def _stop_threads(pipeline: Pipeline) -> None:
        pipeline.stop()
        pipeline.capture.stop()

    def _handle(self, output: Any) -> None:
        from .pipeline import CameraIncident

        point = self.config.point
        if isinstance(output, CameraIncident):
            o = output.outcome
            details = dict(o.details)
            details["boxes"] = [
                {"track": track_id, "label": label, "box": [round(v, 1) for v in box]}
                for track_id, label, box in o.boxes
            ]
            event = IncidentEvent(
                point=point, type=o.type, severity=o.severity, state=o.state, ts=output.ts,
                value=o.value, threshold=o.threshold, unit=o.unit, message=o.message,
                details=details,
            )
            self.ctx.raise_incident(event, output.snapshot)
            self.counters["incidents"] += 1
            self.counters["snapshots"] += output.snapshot is not None
            return
        self.ctx.emit(Reading(point=point, metric="detections", value=float(output.count),
                              unit="objects", ts=output.ts), True)
        for label, count in output.by_label.items():
            self.ctx.emit(Reading(point=point, metric="detections", value=float(count),
                                  unit="objects", ts=output.ts,
                                  tags={"class": class_tag(label)}), True)

    def health(self) -> DriverHealth:
        counters = dict(self.counters)
        capture, pipeline = self.capture, self.pipeline
        state, detail = DriverState.STARTING, self.detail
        if self.state == "error":
            state = DriverState.DOWN
        elif capture is not None and pipeline is not None:
            counters.update(capture.counters)
            counters.update(pipeline.counters)
            counters["fps_in"] = round(self._fps_in(capture))
            counters["fps_out"] = round(pipeline.fps_out)
            counters["detect_ms"] = round(pipeline.detect_ms)
            counters["motion_recalibrations"] = pipeline.motion.recalibrations
            counters["tracks"] = len(pipeline.tracker.tracks)
            if capture.last_frame_at is not None:
                counters["last_frame_age_ms"] = int((time.monotonic() - capture.last_frame_at)
                                                    * 1000)
            state = {"ok": DriverState.OK, "down": DriverState.DOWN}.get(capture.state,
                                                                         DriverState.STARTING)
            detail = capture.detail
        return DriverHealth(state=state, detail=detail, counters=counters,
                            devices={self.config.point: state.value})

    _fps_seen: tuple[float, int] | None = None

    def _fps_in(self, capture: CaptureWorker) -> float:
        """Frames in per second since the previous health snapshot."""
        now, frames = time.monotonic(), capture.counters["frames_in"]
        previous, self._fps_seen = self._fps_seen, (now, frames)
        if previous is None or now <= previous[0]:
            return 0.0
        return (frames - previous[1]) / (now - previous[0])


@DRIVERS.register(CameraConfig)
def create(configs: list[CameraConfig], ctx: DriverContext) -> list[Driver]:
    return [CameraDriver(config, ctx) for config in configs]
