"""intrusion: a person (or the configured labels) in a restricted zone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from .base import CAMERA_RULES, CameraRule, CameraRuleConfigBase, Scene

if TYPE_CHECKING:
    from ..tracker import Track


class IntrusionConfig(CameraRuleConfigBase):
    type: Literal["intrusion"]


class Intrusion(CameraRule):
    incident_type = "intrusion"

    def involved(self, scene: Scene) -> list[Track]:
        return scene.in_zone(self.config.zone, self.labels)


@CAMERA_RULES.register(IntrusionConfig)
def create(config: IntrusionConfig) -> CameraRule:
    return Intrusion(config)
