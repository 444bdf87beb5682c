"""The gateway's optional Prometheus endpoint (``metrics.port``, off by default, 127.0.0.1)."""

from .gateway import GatewayState, gateway_metrics
from .http import MetricsListener

__all__ = ["GatewayState", "MetricsListener", "gateway_metrics"]
