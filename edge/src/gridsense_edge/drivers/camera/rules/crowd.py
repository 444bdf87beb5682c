"""crowd: at least ``min_count`` people in the zone for ``for_s`` seconds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from .base import CAMERA_RULES, CameraRule, CameraRuleConfigBase, Scene

if TYPE_CHECKING:
    from ..tracker import Track


class CrowdConfig(CameraRuleConfigBase):
    type: Literal["crowd"]
    min_count: Annotated[int, Field(ge=2, le=1000)] = 5
    for_s: Annotated[float, Field(ge=0, le=86400)] = 10.0


class Crowd(CameraRule):
    incident_type = "crowd"
    unit = "people"

    def __init__(self, config: CrowdConfig) -> None:
        super().__init__(config)
        self._since: float | None = None

    def involved(self, scene: Scene) -> list[Track]:
        tracks = scene.in_zone(self.config.zone, self.labels)
        if len(tracks) < self.config.min_count:
            self._since = None
            return []
        if self._since is None:
            self._since = scene.t
        return tracks if scene.t - self._since >= self.config.for_s else []

    def threshold(self) -> float:
        return float(self.config.min_count)


@CAMERA_RULES.register(CrowdConfig)
def create(config: CrowdConfig) -> CameraRule:
    return Crowd(config)
