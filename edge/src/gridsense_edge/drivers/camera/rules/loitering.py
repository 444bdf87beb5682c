"""loitering: a person staying in a zone longer than ``dwell_s``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from .base import CAMERA_RULES, CameraRule, CameraRuleConfigBase, Scene, TimedPresence

if TYPE_CHECKING:
    from ..tracker import Track


class LoiteringConfig(CameraRuleConfigBase):
    type: Literal["loitering"]
    dwell_s: Annotated[float, Field(gt=0, le=86400)] = 60.0


class Loitering(CameraRule):
    incident_type = "loitering"
    unit = "s"

    def __init__(self, config: LoiteringConfig) -> None:
        super().__init__(config)
        self._presence = TimedPresence()

    def involved(self, scene: Scene) -> list[Track]:
        return self._presence.held(scene.in_zone(self.config.zone, self.labels), scene.t,
                                   self.config.dwell_s)

    def value(self, scene: Scene, tracks: list[Track]) -> float:
        return round(max((scene.t - t.first_t for t in tracks), default=0.0), 1)

    def threshold(self) -> float:
        return float(self.config.dwell_s)


@CAMERA_RULES.register(LoiteringConfig)
def create(config: LoiteringConfig) -> CameraRule:
    return Loitering(config)
