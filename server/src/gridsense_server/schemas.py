"""The JSON shapes the API and the live stream send, one definition for both."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from gridsense_protocol import utc_now

from .db.models import Gateway, Incident, IncidentTransition
from .db.sequences import SequenceSummary


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
    level: str  # handling level: grid | community | street (from severity)
    accept_due_at: datetime | None  # SLA: accept by (server time; moved on by deferrals)
    resolve_due_at: datetime | None  # SLA: resolved by
    overdue: bool  # waiting past accept_due_at, or accepted past resolve_due_at
    accepted_by: str | None
    previous_id: str | None  # the closed incident this one reopens
    suppressed: str | None  # why it pages no one (a silence, its gateway offline), if so

    @classmethod
    def fields_of(cls, incident: Incident) -> dict[str, Any]:
        return {
            "id": incident.id, "point": incident.point_id, "grid": incident.grid_id,
            "gateway": incident.gateway, "type": incident.type, "severity": incident.severity,
            "state": incident.state, "alarm": incident.alarm, "opened_at": incident.opened_at,
            "last_seen_at": incident.last_seen_at, "count": incident.count,
            "value": incident.value, "message": incident.message,
            "backfilled": bool(incident.backfilled), "level": incident.level or "grid",
            "accept_due_at": incident.accept_due_at, "resolve_due_at": incident.resolve_due_at,
            "overdue": is_overdue(incident, utc_now()), "accepted_by": incident.accepted_by,
            "previous_id": incident.previous_id, "suppressed": incident.suppressed,
        }

    @classmethod
    def of(cls, incident: Incident) -> IncidentView:
        return cls(**cls.fields_of(incident))

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def is_overdue(incident: Incident, now: datetime) -> bool:
    if incident.state in ("new", "returned"):
        return incident.accept_due_at is not None and incident.accept_due_at < now
    if incident.state == "accepted":
        return incident.resolve_due_at is not None and incident.resolve_due_at < now
    return False


class TransitionView(BaseModel):
    action: str  # open, accept, resolve, verify, ... or escalate, remind, unaccept (system)
    from_state: str | None
    to_state: str
    actor: str  # username, or "system"
    role: str | None
    at: datetime
    note: str
    photos: list[str]

    @classmethod
    def of(cls, row: IncidentTransition) -> TransitionView:
        return cls(action=row.action, from_state=row.from_state, to_state=row.to_state,
                   actor=row.actor, role=row.role, at=row.at, note=row.note or "",
                   photos=row.photos or [])


class IncidentDetail(IncidentView):
    event_ids: list[str]  # every edge event folded into this incident, oldest first
    history: list[TransitionView]  # every work-order change, oldest first
    actions: list[str]  # what the caller may do now


class ActionRequest(BaseModel):
    note: str = Field(default="", max_length=2000)
    # References to photos (URLs or upload ids) kept with the history entry.
    photos: list[str] = Field(default=[], max_length=20)
    passed: bool = True  # verify only: false sends it back for rework


class ActionResult(BaseModel):
    incident: IncidentView
    transition: TransitionView


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
