"""Camera rules: one module per incident type, registered with ``CAMERA_RULES`` by ``type``."""

from .base import CAMERA_RULES, CameraRule, CameraRuleConfigBase, RuleOutcome, Scene

CAMERA_RULES.load()

__all__ = ["CAMERA_RULES", "CameraRule", "CameraRuleConfigBase", "RuleOutcome", "Scene"]
