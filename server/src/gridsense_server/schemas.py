"""The JSON shapes the API and the live stream send, one definition for both."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from .db.models import Gateway, Incident
from .sequences import SequenceSummary


class IncidentView(BaseModel):
    id: str
    point: str
    grid: str | None
    gateway: str
    type: str
    severity: str
    state: str  # work order: new, accepted, resolved, closed, returned, deferred, invalid
    alarm: str  # device condition: active | cleared
    opened_at: datetime  # device time of the first event
    last_seen_at: datetime  # device time of the latest event
    count: int
    value: float | None
    message: str
    backfilled: bool  # opened by an event that arrived late (after an outage): not paged

    @classmethod
    def fields_of(cls, incident: Incident) -> dict[str, Any]:
        return {
            "id": incident.id, "point": incident.point_id, "grid": incident.grid_id,
            "gateway": incident.gateway, "type": incident.type, "severity": incident.severity,
            "state": incident.state, "alarm": incident.alarm, "opened_at": incident.opened_at,
            "last_seen_at": incident.last_seen_at, "count": incident.count,
            "value": incident.value, "message": incident.message,
            "backfilled": bool(incident.backfilled),
        }

    @classmethod
    def of(cls, incident: Incident) -> IncidentView:
        return cls(**cls.fields_of(incident))

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class IncidentDetail(IncidentView):
    event_ids: list[str]  # every edge event folded into this incident, oldest first


class GatewayView(BaseModel):
    id: str
    state: str  # online | offline
    last_seen_at: datetime | None
    health: dict[str, Any] | None  # the last Health message, as sent
    seq_last: int | None  # highest sequence number received
    seq_gaps: int  # holes in the received sequence numbers (messages never received)
    seq_missing: int  # sequence numbers in those holes
    seq_redelivered: int  # messages received again after being recorded

    @classmethod
    def of(cls, gateway: Gateway, sequences: SequenceSummary | None) -> GatewayView:
        return cls(
            id=gateway.id, state=gateway.state, last_seen_at=gateway.last_seen_at,
            health=gateway.last_health,
            seq_last=sequences.last if sequences else None,
            seq_gaps=sequences.gaps if sequences else 0,
            seq_missing=sequences.missing if sequences else 0,
            seq_redelivered=gateway.seq_redelivered or 0,
        )


class TokenRequest(BaseModel):
    username: str
    password: str


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
