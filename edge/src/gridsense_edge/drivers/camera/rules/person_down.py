"""person_down: a person whose box went from upright to lying and stayed so (a fall)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from ..geometry import Box
from .base import CAMERA_RULES, CameraRule, CameraRuleConfigBase, Scene

if TYPE_CHECKING:
    from ..tracker import Track


class PersonDownConfig(CameraRuleConfigBase):
    type: Literal["person_down"]
    upright_ratio: Annotated[float, Field(gt=1, le=10)] = 1.3
    lying_ratio: Annotated[float, Field(gt=1, le=10)] = 1.2
    for_s: Annotated[float, Field(ge=0, le=600)] = 2.0
    window_s: Annotated[float, Field(gt=0, le=600)] = 10.0


def _upright(box: Box, ratio: float) -> bool:
    return (box[3] - box[1]) >= ratio * max(box[2] - box[0], 1e-6)


def _lying(box: Box, ratio: float) -> bool:
    return (box[2] - box[0]) >= ratio * max(box[3] - box[1], 1e-6)


class PersonDown(CameraRule):
    incident_type = "person_down"

    def _down(self, track: Track, t: float) -> bool:
        c = self.config
        history = list(track.history)
        if not history or not _lying(history[-1][1], c.lying_ratio):
            return False
        lying_since = t
        for moment, box in reversed(history):
            if not _lying(box, c.lying_ratio):
                break
            lying_since = moment
        if t - lying_since < c.for_s:
            return False
        return any(_upright(box, c.upright_ratio) for moment, box in history
                   if lying_since - c.window_s <= moment < lying_since)

    def involved(self, scene: Scene) -> list[Track]:
        return [t for t in scene.in_zone(self.config.zone, self.labels) if self._down(t, scene.t)]


@CAMERA_RULES.register(PersonDownConfig)
def create(config: PersonDownConfig) -> CameraRule:
    return PersonDown(config)
