"""``temperature_anomaly``: an ONNX model over each point's own 24-hour baseline (see rule.py)."""

from ..base import RULES, Rule
from .rule import TemperatureAnomaly, TemperatureAnomalyConfig


@RULES.register(TemperatureAnomalyConfig)
def create(config: TemperatureAnomalyConfig) -> Rule:
    return TemperatureAnomaly(config)
