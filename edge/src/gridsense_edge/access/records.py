"""What a door driver hands the agent for the access log (the envelope is the publisher's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gridsense_protocol import AccessResult


@dataclass(frozen=True, slots=True)
class AccessRecord:
    point: str
    door: str
    result: AccessResult
    ts: datetime  # when the reader reported it (the gateway's clock)
    method: str = "door"
    credential: str | None = None
    card: str | None = None  # keyed hash, never the number
    reason: str | None = None
    credentials_version: int | None = None
