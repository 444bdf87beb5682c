"""The state of every marker on a plan, in one read: what colour each point and gateway is now.

A marker's ``status``, most pressing first: ``overdue`` (an open incident past its deadline),
``alarm`` (an open incident whose alarm is still active), ``open`` (open incidents, alarm
cleared), ``offline`` (the gateway, or a point's gateway, is offline), ``normal``. The page
colours all markers from this, then follows the live stream (incident events name the point
and gateway) and reads this again when one of its markers is concerned.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.models import FINAL_STATES, Gateway, Incident
from ..db.plan_models import PlanMarker
from ..registry.viewers import Viewer
from ..workorders.views import is_overdue
from .scope import Targets

Status = Literal["overdue", "alarm", "open", "offline", "normal"]
_SEVERITY_RANK = {"critical": 0, "major": 1, "minor": 2}
INCIDENTS_PER_MARKER = 10  # ids listed per marker (most urgent first); ``open`` counts them all
MAX_OPEN_READ = 20_000  # open incidents read for one plan at most


class MarkerState(BaseModel):
    kind: str  # point | gateway
    id: str
    status: Status
    severity: str | None  # the worst of the open incidents
    alarm_active: bool
    overdue: bool
    open: int  # open incidents
    incidents: list[str]  # open incident ids, most urgent first (at most 10)
    gateway: str | None  # the point's gateway (the gateway itself for a gateway marker)
    gateway_online: bool | None  # None: never heard from


@dataclass
class _Tally:
    open: int = 0
    overdue: bool = False
    alarm: bool = False
    severity: str | None = None
    ranked: list[tuple[tuple[int, int, float], str]] = field(default_factory=list)

    def add(self, incident: Incident, now: datetime) -> None:
        late = is_overdue(incident, now)
        self.open += 1
        self.overdue |= late
        self.alarm |= incident.alarm == "active"
        rank = _SEVERITY_RANK.get(incident.severity, 3)
        if self.severity is None or rank < _SEVERITY_RANK.get(self.severity, 3):
            self.severity = incident.severity
        self.ranked.append(((0 if late else 1, rank, -incident.last_seen_at.timestamp()),
                            incident.id))


def marker_states(session: Session, viewer: Viewer, markers: list[PlanMarker],
                  seen: Targets, now: datetime) -> list[MarkerState]:
    """States of the markers the viewer sees (``seen``); incidents only from their grids."""
    shown = [m for m in markers if seen.has(m.kind, m.target_id)]
    gateway_of = {(m.kind, m.target_id): (seen.gateway_of.get(m.target_id) if m.kind == "point"
                                          else m.target_id) for m in shown}
    online = _gateways_online({g for g in gateway_of.values() if g is not None}, session)
    tallies = _open_incidents(session, viewer, {m.target_id for m in shown}, now)
    states = []
    for m in shown:
        tally = tallies.get(m.target_id, _Tally())
        gateway = gateway_of[(m.kind, m.target_id)]
        up = online.get(gateway) if gateway is not None else None
        status: Status = ("overdue" if tally.overdue else "alarm" if tally.alarm
                          else "open" if tally.open else "offline" if up is False else "normal")
        states.append(MarkerState(
            kind=m.kind, id=m.target_id, status=status, severity=tally.severity,
            alarm_active=tally.alarm, overdue=tally.overdue, open=tally.open,
            incidents=[i for _, i in sorted(tally.ranked)[:INCIDENTS_PER_MARKER]],
            gateway=gateway, gateway_online=up))
    return states


def _gateways_online(gateways: set[str], session: Session) -> dict[str, bool]:
    if not gateways:
        return {}
    rows = session.execute(select(Gateway.id, Gateway.state)
                           .where(Gateway.id.in_(sorted(gateways))))
    return {gateway: state == "online" for gateway, state in rows}


def _open_incidents(session: Session, viewer: Viewer, subjects: set[str],
                    now: datetime) -> dict[str, _Tally]:
    """Open incidents by point id (a gateway's own incidents carry its id as the point)."""
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    if not subjects:
        return tallies
    query = (select(Incident).where(Incident.point_id.in_(sorted(subjects)),
                                    Incident.state.not_in(FINAL_STATES))
             .limit(MAX_OPEN_READ))
    if viewer.grids is not None:
        query = query.where(Incident.grid_id.in_(sorted(viewer.grids)))
    for incident in session.scalars(query):
        tallies[incident.point_id].add(incident, now)
    return tallies
