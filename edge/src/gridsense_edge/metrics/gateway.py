"""What the gateway's /metrics says: its outbox by lane, drops, the uplink, every driver's and
device's state, poll latency and camera frames. Read from the agent's own counters and the
drivers' health at scrape time; these names are a published interface (docs/operations.md)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gridsense_protocol import DriverHealth, DriverState

from ..health import HealthSource, process_cpu_seconds, process_rss_bytes
from ..logs import log_event
from .text import Family, render

log = logging.getLogger(__name__)

P = "gridsense_edge"
LANES = ("incident", "bulk")
# Agent counters exported as counters of their own (the rest stay in the health message).
AGENT_COUNTERS = {
    "readings": "readings the drivers produced",
    "reported": "readings sent (changed enough, or due for refresh)",
    "incidents": "incident events raised",
    "access_events": "door events recorded",
    "rule_errors": "rule evaluations that failed",
    "driver_restarts": "drivers restarted after a crash",
    "published": "messages published to the broker",
}
# Outbox drop counters by why (see transport/outbox_caps.py).
DROP_REASONS = ("cap", "age", "disk", "incident_cap", "unstored")
CAMERA_FRAMES = {"frames_in": "captured", "frames_out": "processed"}


@dataclass
class GatewayState:
    """Where the numbers come from: the agent's counters (outbox_*, mqtt_*), its drivers."""

    gateway: str
    counters: Callable[[], dict[str, int]]
    sources: Callable[[], Iterable[HealthSource]]  # read at each scrape
    started: float  # time.monotonic() at start


def gateway_metrics(state: GatewayState) -> bytes:
    values = state.counters()
    families = [
        *_outbox(values),
        Family(f"{P}_mqtt_connected", "gauge", "1 while the uplink is connected").add(
            values.get("mqtt_connected", 0)),
        Family(f"{P}_mqtt_inflight", "gauge", "messages published, not yet acknowledged").add(
            values.get("mqtt_inflight", 0)),
    ]
    for key, text in AGENT_COUNTERS.items():
        families.append(Family(f"{P}_{key}", "counter", text).add(values.get(key, 0)))
    families += _drivers(state.sources())
    families += [
        Family(f"{P}_resident_memory_bytes", "gauge", "resident memory of the agent").add(
            process_rss_bytes()),
        Family(f"{P}_cpu_seconds", "counter", "CPU time of the agent (user + system)").add(
            process_cpu_seconds()),
        Family(f"{P}_uptime_seconds", "gauge", "seconds since the agent started").add(
            round(time.monotonic() - state.started, 3)),
        Family(f"{P}_info", "gauge", "this gateway").add(1, gateway=state.gateway),
    ]
    return render(families)


def _outbox(values: dict[str, int]) -> list[Family]:
    depth = Family(f"{P}_outbox_depth", "gauge", "messages waiting in the outbox, by lane")
    size = Family(f"{P}_outbox_bytes", "gauge", "bytes waiting in the outbox, by lane")
    for lane in LANES:
        depth.add(values.get(f"outbox_{lane}_depth", 0), lane=lane)
        size.add(values.get(f"outbox_{lane}_bytes", 0), lane=lane)
    dropped = Family(f"{P}_outbox_dropped", "counter",
                     "messages the outbox dropped (a lane or the disk full, too old), by reason")
    for reason in DROP_REASONS:
        dropped.add(values.get(f"outbox_dropped_{reason}", 0), reason=reason)
    oldest = Family(f"{P}_outbox_oldest_age_seconds", "gauge",
                    "age of the oldest unacknowledged message").add(
        values.get("outbox_oldest_age_s", 0))
    return [depth, size, dropped, oldest]


def _drivers(sources: Iterable[HealthSource]) -> list[Family]:
    driver_state = Family(f"{P}_driver_state", "gauge", "1 for each driver's state now")
    device_state = Family(f"{P}_device_state", "gauge", "1 for each device's state now")
    polls = Family(f"{P}_polls", "counter", "device polls, by driver")
    poll_time = Family(f"{P}_poll_seconds", "counter",
                       "time spent polling, by driver (divide by polls: the mean latency)")
    frames = Family(f"{P}_camera_frames", "counter", "camera frames captured and processed")
    dropped = Family(f"{P}_camera_dropped_frames", "counter",
                     "camera frames dropped (the pipeline was busy)")
    values = Family(f"{P}_driver_value", "untyped",
                    "every number a driver reports in its health, by name")
    for source in sources:
        health = _health_of(source)
        name = source.name
        for state in DriverState:
            driver_state.add(1 if health.state is state else 0, driver=name, state=state.value)
        for device, state_text in health.devices.items():
            device_state.add(1, driver=name, device=device, state=state_text)
        counters = health.counters
        if "polls" in counters:
            polls.add(counters["polls"], driver=name)
            poll_time.add(counters.get("poll_ms", 0) / 1000, driver=name)
        if "frames_in" in counters:
            for key, stage in CAMERA_FRAMES.items():
                frames.add(counters.get(key, 0), driver=name, stage=stage)
            dropped.add(counters.get("dropped_frames", 0), driver=name)
        for key, number in counters.items():
            values.add(number, driver=name, name=key)
    return [driver_state, device_state, polls, poll_time, frames, dropped, values]


def _health_of(source: HealthSource) -> DriverHealth:
    try:
        return source.health()
    except Exception as exc:  # one broken driver must not take the page down
        log_event(log, "driver_health_failed", logging.ERROR, driver=source.name,
                  error=repr(exc))
        return DriverHealth(state=DriverState.DOWN, detail=repr(exc)[:500])
