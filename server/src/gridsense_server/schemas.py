"""The JSON shapes the API and the live stream send, one definition for both."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from .db.models import Gateway, Incident


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

    @classmethod
    def fields_of(cls, incident: Incident) -> dict[str, Any]:
        return {
            "id": incident.id, "point": incident.point_id, "grid": incident.grid_id,
            "gateway": incident.gateway, "type": incident.type, "severity": incident.severity,
            "state": incident.state, "alarm": incident.alarm, "opened_at": incident.opened_at,
            "last_seen_at": incident.last_seen_at, "count": incident.count,
            "value": incident.value, "message": incident.message,
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

    @classmethod
    def of(cls, gateway: Gateway) -> GatewayView:
        return cls(id=gateway.id, state=gateway.state, last_seen_at=gateway.last_seen_at,
                   health=gateway.last_health)


class TokenRequest(BaseModel):
    username: str
    password: str


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
