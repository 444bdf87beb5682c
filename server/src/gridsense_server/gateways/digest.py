"""What the gateways page shows of a gateway's last Health message: process figures, outbox depth,
each driver and its devices — read out of the stored JSON, which is the message as the gateway
sent it (validated at ingest, so only the shapes are checked here, never trusted blindly: a row
written by an older server may lack a field)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

MAX_DEVICES = 500  # per driver: a page row, not an inventory (the raw health keeps them all)


class DeviceView(BaseModel):
    id: str  # the device or point the driver names
    state: str  # as the driver says it: ok, timeout, offline, ...


class DriverView(BaseModel):
    name: str
    state: str  # starting | ok | degraded | down
    detail: str | None
    devices: list[DeviceView]


class HealthDigest(BaseModel):
    health_at: datetime | None = None  # the device time of the last Health message
    uptime_s: float | None = None
    cpu_percent: float | None = None  # of one core, averaged since the previous Health
    memory_rss_bytes: int | None = None
    disk_free_bytes: int | None = None
    outbox_depth: int | None = None  # messages waiting for the server's confirmation
    outbox_oldest_age_s: int | None = None
    drivers: list[DriverView] = []


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _integer(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _drivers(raw: Any) -> list[DriverView]:
    if not isinstance(raw, dict):
        return []
    drivers = []
    for name, body in sorted(raw.items()):
        if not isinstance(body, dict):
            continue
        devices = body.get("devices") if isinstance(body.get("devices"), dict) else {}
        drivers.append(DriverView(
            name=str(name), state=str(body.get("state", "unknown")),
            detail=body.get("detail") if isinstance(body.get("detail"), str) else None,
            devices=[DeviceView(id=str(device), state=str(state))
                     for device, state in sorted(devices.items())[:MAX_DEVICES]]))
    return drivers


def digest(health: dict[str, Any] | None) -> HealthDigest:
    """The page's figures from a stored Health message (all None when none arrived yet)."""
    if not health:
        return HealthDigest()
    counters = health.get("counters") if isinstance(health.get("counters"), dict) else {}
    # The agent reports each outbox lane's depth (incidents, bulk readings) among its counters.
    lanes = [_integer(counters.get(k)) for k in ("outbox_incident_depth", "outbox_bulk_depth")]
    known = [lane for lane in lanes if lane is not None]
    return HealthDigest(
        health_at=_time(health.get("ts")),
        uptime_s=_number(health.get("uptime_s")),
        cpu_percent=_number(health.get("cpu_percent")),
        memory_rss_bytes=_integer(health.get("memory_rss_bytes")),
        disk_free_bytes=_integer(health.get("disk_free_bytes")),
        outbox_depth=sum(known) if known else None,
        outbox_oldest_age_s=_integer(counters.get("outbox_oldest_age_s")),
        drivers=_drivers(health.get("drivers")),
    )
