"""What every camera rule shares: its config, its schedule, and the episode it reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from gridsense_protocol import AlarmState, Severity

from ....configtypes import context_of
from ....plugins import PluginRegistry
from ..geometry import Box
from ..zones import Zone

if TYPE_CHECKING:
    from ..tracker import Track

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Label = Annotated[str, Field(min_length=1, max_length=48)]
# Validation context keys set by the camera's config (drivers/camera.py) before its rules.
CAMERA_ZONES = "camera_zones"
CAMERA_LABELS = "camera_labels"


class ScheduleWindow(BaseModel):
    """Local time of the gateway; ``end`` before ``start`` spans midnight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: Annotated[list[Day], Field(min_length=1)] = list(DAYS)
    start: time = time(0, 0)
    end: time = time(23, 59, 59)

    def covers(self, moment: datetime) -> bool:
        local = moment.astimezone()
        now, day = local.time(), DAYS[local.weekday()]
        if self.start <= self.end:
            return day in self.days and self.start <= now <= self.end
        yesterday = DAYS[(local.weekday() - 1) % 7]
        return (day in self.days and now >= self.start) or (
            yesterday in self.days and now <= self.end)


class CameraRuleConfigBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    zone: Annotated[str, Field(min_length=1)] | None = None  # None: the whole frame
    labels: Annotated[list[Label], Field(min_length=1)] | None = None  # None: the rule's default
    severity: Severity = Severity.MAJOR
    schedule: list[ScheduleWindow] = []  # empty: always
    clear_after_s: Annotated[float, Field(ge=0, le=3600)] = 5.0

    @field_validator("zone")
    @classmethod
    def _zone_defined(cls, value: str | None, info: ValidationInfo) -> str | None:
        known = context_of(info).get(CAMERA_ZONES)
        if value is not None and known is not None and value not in known:
            raise ValueError(f"unknown zone {value!r} (this camera's zones: "
                             f"{', '.join(sorted(known)) or 'none'})")
        return value

    @field_validator("labels")
    @classmethod
    def _labels_known(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        known = context_of(info).get(CAMERA_LABELS)
        for label in value or []:
            if known is not None and label not in known:
                raise ValueError(f"label {label!r} is not one the model detects "
                                 f"(its card lists: {', '.join(known)})")
        return value


@dataclass(frozen=True, slots=True)
class Scene:
    t: float  # seconds on the stream's clock (frame time)
    ts: datetime  # the same instant as a wall-clock time
    tracks: list[Track]  # counted tracks only (median score over the threshold)
    zones: dict[str, Zone]
    frame_size: tuple[int, int]

    def in_zone(self, zone: str | None, labels: list[str]) -> list[Track]:
        area = self.zones.get(zone) if zone is not None else None
        return [t for t in self.tracks
                if t.label in labels and (area is None or area.contains(t.box))]


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    type: str
    state: AlarmState
    severity: Severity
    value: float
    threshold: float | None
    unit: str
    message: str
    zone: str | None
    boxes: list[tuple[int, str, Box]]  # (track id, label, box) of the involved objects
    details: dict[str, Any]


class CameraRule:
    """Subclasses set ``incident_type``, ``default_labels``, and implement ``involved``."""

    incident_type: str
    default_labels: tuple[str, ...] = ("person",)
    unit = "objects"

    def __init__(self, config: Any) -> None:
        self.config = config
        self.labels = list(config.labels or self.default_labels)
        self._active = False
        self._last_true = 0.0

    def involved(self, scene: Scene) -> list[Track]:
        raise NotImplementedError

    def value(self, scene: Scene, tracks: list[Track]) -> float:
        return float(len(tracks))

    def threshold(self) -> float | None:
        return None

    def describe(self, tracks: list[Track]) -> str:
        where = f"zone {self.config.zone}" if self.config.zone else "view"
        labels = ", ".join(sorted({t.label for t in tracks}))
        return f"{self.incident_type.replace('_', ' ')}: {labels} in {where}"

    def evaluate(self, scene: Scene) -> RuleOutcome | None:
        schedule = self.config.schedule
        in_schedule = not schedule or any(w.covers(scene.ts) for w in schedule)
        tracks = self.involved(scene) if in_schedule else []
        if tracks:
            self._last_true = scene.t
            if not self._active:
                self._active = True
                return self._outcome(AlarmState.ACTIVE, scene, tracks, self.describe(tracks))
            return None
        if self._active and (not in_schedule or
                             scene.t - self._last_true >= self.config.clear_after_s):
            self._active = False
            return self._outcome(AlarmState.CLEARED, scene, [], f"{self.incident_type} over")
        return None

    def _outcome(self, state: AlarmState, scene: Scene, tracks: list[Track], message: str
                 ) -> RuleOutcome:
        return RuleOutcome(
            type=self.incident_type, state=state, severity=self.config.severity,
            value=self.value(scene, tracks), threshold=self.threshold(), unit=self.unit,
            message=message, zone=self.config.zone,
            boxes=[(t.id, t.label, t.box) for t in tracks],
            details={"zone": self.config.zone, "tracks": [t.id for t in tracks],
                     "labels": sorted({t.label for t in tracks})},
        )


RuleFactory = Callable[[Any], CameraRule]
CAMERA_RULES: PluginRegistry[RuleFactory] = PluginRegistry(
    "camera rule", "gridsense_edge.drivers.camera.rules"
)


class TimedPresence:
    """Since when each track has met a condition (dropped when it stops): loitering and the
    fire lane both need "for T seconds", per object."""

    def __init__(self) -> None:
        self._since: dict[int, float] = {}

    def held(self, tracks: list[Track], t: float, for_s: float) -> list[Track]:
        present = {track.id for track in tracks}
        for track_id in list(self._since):
            if track_id not in present:
                del self._since[track_id]
        for track in tracks:
            self._since.setdefault(track.id, t)
        return [track for track in tracks if t - self._since[track.id] >= for_s]
