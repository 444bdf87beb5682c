"""ebike_in_elevator: an electric bike or motorcycle in the elevator zone (a fire risk)."""

from __future__ import annotations

from typing import Literal

from gridsense_protocol import Severity

from .base import CAMERA_RULES, CameraRule, CameraRuleConfigBase
from .intrusion import Intrusion


class EbikeInElevatorConfig(CameraRuleConfigBase):
    type: Literal["ebike_in_elevator"]
    severity: Severity = Severity.CRITICAL


class EbikeInElevator(Intrusion):
    """The presence test of intrusion, with the two-wheeler classes as its default labels."""

    incident_type = "ebike_in_elevator"
    default_labels = ("bicycle", "motorcycle", "ebike")


@CAMERA_RULES.register(EbikeInElevatorConfig)
def create(config: EbikeInElevatorConfig) -> CameraRule:
    return EbikeInElevator(config)
