"""fire_lane_blocked: a vehicle standing still in the fire-lane zone longer than ``for_s``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from .base import CAMERA_RULES, CameraRule, CameraRuleConfigBase, Scene

if TYPE_CHECKING:
    from ..tracker import Track


class FireLaneBlockedConfig(CameraRuleConfigBase):
    type: Literal["fire_lane_blocked"]
    for_s: Annotated[float, Field(gt=0, le=86400)] = 120.0


class FireLaneBlocked(CameraRule):
    incident_type = "fire_lane_blocked"
    default_labels = ("car", "truck", "bus", "motorcycle")
    unit = "s"

    def involved(self, scene: Scene) -> list[Track]:
        # The tracker knows since when each object has not moved; passing traffic never counts.
        return [t for t in scene.in_zone(self.config.zone, self.labels)
                if t.stationary_s(scene.t) >= self.config.for_s]

    def value(self, scene: Scene, tracks: list[Track]) -> float:
        return round(max((t.stationary_s(scene.t) for t in tracks), default=0.0), 1)

    def threshold(self) -> float:
        return float(self.config.for_s)


@CAMERA_RULES.register(FireLaneBlockedConfig)
def create(config: FireLaneBlockedConfig) -> CameraRule:
    return FireLaneBlocked(config)
