"""Prometheus metrics: read from the server's counters, gauges and database at scrape time."""

from .collector import MetricSources, ServerCollector, make_registry, render
from .token import load_metrics_token

__all__ = ["MetricSources", "ServerCollector", "load_metrics_token", "make_registry", "render"]
