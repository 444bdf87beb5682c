"""What drivers and rules hand the agent to record: incident events and access events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gridsense_protocol import AccessResult, AlarmState, Severity


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    point: str
    type: str
    severity: Severity
    state: AlarmState
    ts: datetime  # device time of the reading that decided it
    value: float
    threshold: float | None
    unit: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AccessRecord:
    """One access event at a door; the envelope around it is the publisher's."""

    point: str
    door: str
    result: AccessResult
    ts: datetime  # when the reader reported it (the gateway's clock)
    method: str = "door"
    credential: str | None = None
    card: str | None = None  # keyed hash, never the number
    reason: str | None = None
    credentials_version: int | None = None
    pass_id: str | None = None  # decided on an electronic pass
