"""The server's Prometheus collector: everything is read when Prometheus scrapes (counters,
gauges, a few grouped database counts), so no code path carries a metrics call of its own.

Each server process has its own registry and listener: scrape every process (they share no
memory, so prometheus-client's multiprocess mode does not apply). The database-derived gauges
(incidents, overdue, scheduler lag) are the same from every process: aggregate them with max().
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import utc_now

from ..api.context import Health
from ..api.incident_routes import overdue_clause
from ..counters import DURATION_BUCKETS_S, Counters, Durations
from ..db.models import FINAL_STATES, EscalationStep, Incident
from ..logs import kv
from .names import GAUGES, HISTOGRAMS, LABELLED, PLAIN, full

log = logging.getLogger(__name__)

HEALTH_STATES = ("ok", "degraded", "down")


@dataclass
class MetricSources:
    counters: Counters
    gauges: Callable[[], dict[str, Any]]
    health: Callable[[], Health]
    factory: sessionmaker[Session] | None = None  # None: no database-derived gauges
    clock: Callable[[], datetime] = utc_now


class ServerCollector(Collector):
    def __init__(self, sources: MetricSources) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        values = self.sources.counters.snapshot()
        yield from _labelled(values)
        for counter, (name, text) in PLAIN.items():
            yield CounterMetricFamily(full(name), text, value=values.get(counter, 0))
        everything = CounterMetricFamily(
            full("counter"), "every /healthz counter by its dotted name (less stable than the "
            "named metrics: names follow the code)", labels=("name",))
        for counter, value in values.items():
            everything.add_metric((counter,), value)
        yield everything
        yield from _gauges(self.sources.gauges())
        durations = self.sources.counters.durations()
        for key, (name, text) in HISTOGRAMS.items():
            yield _histogram(full(name), text, durations.get(key))
        yield _health(self.sources.health())
        if self.sources.factory is not None:
            yield from self._database(self.sources.factory)

    def _database(self, factory: sessionmaker[Session]) -> Iterator[Metric]:
        up = GaugeMetricFamily(full("metrics_database_up"),
                               "1 when the incident gauges could be read from the database")
        try:
            found = _database_gauges(factory, self.sources.clock())
        except Exception as exc:  # a scrape must still answer: the up gauge says it failed
            log.warning(kv("metrics_database_failed", error=repr(exc)[:300]))
            up.add_metric((), 0)
            yield up
            return
        up.add_metric((), 1)
        yield up
        yield from found


def _labelled(values: dict[str, int]) -> Iterator[Metric]:
    for family in LABELLED:
        metric = CounterMetricFamily(full(family.name), family.help, labels=family.labels)
        for counter, value in values.items():
            if not counter.startswith(family.prefix):
                continue
            rest = counter[len(family.prefix):]
            labels = tuple(rest.rsplit(".", 1)) if len(family.labels) == 2 else (rest,)
            if len(labels) == len(family.labels):
                metric.add_metric(labels, value)
        yield metric


def _gauges(gauges: dict[str, Any]) -> Iterator[Metric]:
    for key, (name, text) in GAUGES.items():
        if key in gauges:
            yield GaugeMetricFamily(full(name), text, value=float(gauges[key]))
    info = GaugeMetricFamily(full("build_info"), "the server's version", labels=("version",))
    info.add_metric((str(gauges.get("version", "")),), 1)
    yield info


def _histogram(name: str, text: str, durations: Durations | None) -> Metric:
    bounds = [*(repr(b) for b in DURATION_BUCKETS_S), "+Inf"]
    counts = durations.buckets if durations is not None else (0,) * len(bounds)
    cumulative, running = [], 0
    for bound, count in zip(bounds, counts, strict=True):
        running += count
        cumulative.append((bound, running))
    total = durations.total_s if durations is not None else 0.0
    return HistogramMetricFamily(name, text, buckets=cumulative, sum_value=total)


def _health(health: Health) -> Metric:
    metric = GaugeMetricFamily(full("health_status"),
                               "1 for the status /healthz answers now (ok, degraded, down)",
                               labels=("status",))
    for status in HEALTH_STATES:
        metric.add_metric((status,), 1 if health.status == status else 0)
    return metric


def _database_gauges(factory: sessionmaker[Session], now: datetime) -> list[Metric]:
    """Open incidents by state and severity, overdue ones by severity, and how late the
    escalation scheduler runs (the oldest step due and not yet done): three grouped reads."""
    open_incidents = GaugeMetricFamily(
        full("incidents_open"), "incidents not closed or invalid, by state and severity",
        labels=("state", "severity"))
    overdue = GaugeMetricFamily(
        full("incidents_overdue"),
        "incidents waiting past their accept deadline or handled past their resolve deadline",
        labels=("severity",))
    lag = GaugeMetricFamily(
        full("escalation_lag_seconds"),
        "how long the oldest escalation step due has waited (0: the scheduler is keeping up)")
    with factory() as session:
        for state, severity, count in session.execute(
                select(Incident.state, Incident.severity, func.count())
                .where(Incident.state.not_in(FINAL_STATES))
                .group_by(Incident.state, Incident.severity)):
            open_incidents.add_metric((state, severity), count)
        for severity, count in session.execute(
                select(Incident.severity, func.count()).where(overdue_clause(now))
                .group_by(Incident.severity)):
            overdue.add_metric((severity,), count)
        oldest = session.scalar(select(func.min(EscalationStep.due_at)).where(
            EscalationStep.status == "pending", EscalationStep.due_at <= now))
    lag.add_metric((), max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0)
    return [open_incidents, overdue, lag]


def make_registry(sources: MetricSources) -> CollectorRegistry:
    """A registry of this server's own (tests run several servers in one process)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServerCollector(sources))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
