"""Incidents as the API and the live stream send them, one definition for both."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from gridsense_protocol import utc_now

from ..db.models import Incident, IncidentTransition
from ..registry.names import PlaceNames, with_place_names


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
    threshold: float | None = None  # the gateway's limit for value (the chart's line)
    unit: str | None = None  # of value and threshold, e.g. °C
    message: str
    backfilled: bool  # opened by an event that arrived late (after an outage): not paged
    level: str  # handling level: grid | community | street (from severity)
    accept_due_at: datetime | None  # SLA: accept by (server time; moved on by deferrals)
    resolve_due_at: datetime | None  # SLA: resolved by
    overdue: bool  # waiting past accept_due_at, or accepted past resolve_due_at
    accepted_by: str | None
    previous_id: str | None  # the closed incident this one reopens
    suppressed: str | None  # why it pages no one (a silence, its gateway offline), if so
    drill: bool = False  # a commissioning drill: not on the board, not in the statistics
    # The registry's names (None where it does not know the point or grid; live pushes carry
    # ids only, the page names them from GET /api/v1/registry/points and /tree).
    point_name: str | None = None
    location: str | None = None
    grid_name: str | None = None  # the grid, also for an incident in one of its micro-grids
    micro_grid_name: str | None = None
    community_name: str | None = None
    street_name: str | None = None

    @classmethod
    def fields_of(cls, incident: Incident, names: PlaceNames | None = None) -> dict[str, Any]:
        return {**(names.fields() if names is not None else {}),
            "id": incident.id, "point": incident.point_id, "grid": incident.grid_id,
            "gateway": incident.gateway, "type": incident.type, "severity": incident.severity,
            "state": incident.state, "alarm": incident.alarm, "opened_at": incident.opened_at,
            "last_seen_at": incident.last_seen_at, "count": incident.count,
            "value": incident.value, "threshold": incident.threshold, "unit": incident.unit,
            "message": incident.message,
            "backfilled": bool(incident.backfilled), "level": incident.level or "grid",
            "accept_due_at": incident.accept_due_at, "resolve_due_at": incident.resolve_due_at,
            "overdue": is_overdue(incident, utc_now()), "accepted_by": incident.accepted_by,
            "previous_id": incident.previous_id, "suppressed": incident.suppressed,
            "drill": bool(incident.drill),
        }

    @classmethod
    def of(cls, incident: Incident, names: PlaceNames | None = None) -> IncidentView:
        return cls(**cls.fields_of(incident, names))

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def named_incidents(session: Session, query: Select[Any]) -> list[IncidentView]:
    """The incidents ``query`` selects, each with its names: one query for the whole list."""
    rows = session.execute(with_place_names(query, Incident.point_id, Incident.grid_id))
    return [IncidentView.of(row[0], PlaceNames.of(row[1:])) for row in rows]


def names_of(session: Session, incident: Incident) -> PlaceNames:
    query = with_place_names(select(Incident.id).where(Incident.id == incident.id),
                             Incident.point_id, Incident.grid_id)
    row = session.execute(query).one()
    return PlaceNames.of(row[1:])


def is_overdue(incident: Incident, now: datetime) -> bool:
    if incident.state in ("new", "returned"):
        return incident.accept_due_at is not None and incident.accept_due_at < now
    if incident.state == "accepted":
        return incident.resolve_due_at is not None and incident.resolve_due_at < now
    return False


# An uploaded photo's id (onsite/photo_store.py makes them); anything else is a typed link.
PHOTO_ID = re.compile(r"ph[0-9a-f]{24}")


class PhotoLink(BaseModel):
    url: str
    thumbnail_url: str | None  # None for a link given as text

    @classmethod
    def of(cls, incident_id: str, photo: str) -> PhotoLink:
        if PHOTO_ID.fullmatch(photo):
            base = f"/api/v1/incidents/{incident_id}/photos/{photo}"
            return cls(url=base, thumbnail_url=f"{base}/thumbnail")
        return cls(url=photo, thumbnail_url=None)


class TransitionView(BaseModel):
    action: str  # open, accept, resolve, verify, ... or escalate, remind, unaccept (system)
    from_state: str | None
    to_state: str
    actor: str  # username, or "system"
    role: str | None
    at: datetime
    note: str
    photos: list[str]  # photo ids (uploaded) or links (given as text)
    photo_links: list[PhotoLink] = []  # one per photo: where to show it

    @classmethod
    def of(cls, row: IncidentTransition) -> TransitionView:
        photos = row.photos or []
        return cls(action=row.action, from_state=row.from_state, to_state=row.to_state,
                   actor=row.actor, role=row.role, at=row.at, note=row.note or "",
                   photos=photos, photo_links=[PhotoLink.of(row.incident_id, p) for p in photos])


class IncidentDetail(IncidentView):
    event_ids: list[str]  # every edge event folded into this incident, oldest first
    history: list[TransitionView]  # every work-order change, oldest first
    actions: list[str]  # what the caller may do now


class ActionRequest(BaseModel):
    note: str = Field(default="", max_length=2000)
    # References to photos (URLs or upload ids) kept with the history entry.
    photos: list[str] = Field(default=[], max_length=20)
    passed: bool = True  # verify only: false sends it back for rework
    # Required to close (verify) or invalidate while the alarm is still active; kept in the
    # history and the audit log.
    reason: str = Field(default="", max_length=500)
    # The client's own id for this action (an offline queue resends it): applied once, and
    # a resend answered as the first was.
    action_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:\-]{8,64}$")


class ActionResult(BaseModel):
    incident: IncidentView
    transition: TransitionView
