"""Noise control: silences, and one gateway_offline incident instead of one per point.

A silence (gateway, point, grid and/or type, with an expiry) lets matching incidents be
recorded but pages no one. While a gateway's gateway_offline incident is open, its points' own
offline-type incidents are recorded as suppressed ("gateway_offline"): the one incident that
matters is the gateway's. Bursts to one group robot are folded into a digest by the notifier.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridsense_protocol import AlarmState, new_event_id

from ..config import LifecycleConfig
from ..db.models import FINAL_STATES, Incident, Point, Silence
from .states import LEVEL_FOR_SEVERITY
from .transitions import on_opened

GATEWAY_OFFLINE = "gateway_offline"


class SilenceCache:
    """Active silences, re-read at most every ``ttl_s``: the ingest hot path must not pay a
    query per batch for a table that is nearly always empty. A new silence (from any server
    process) takes effect within ``ttl_s``."""

    def __init__(self, ttl_s: float = 2.0) -> None:
        self.ttl = timedelta(seconds=ttl_s)
        self._rows: list[Silence] = []
        self._until: datetime | None = None

    def active(self, session: Session, now: datetime) -> list[Silence]:
        if self._until is None or now >= self._until:
            self._rows = list(session.scalars(select(Silence).where(Silence.ends_at > now)))
            for row in self._rows:
                session.expunge(row)
            self._until = now + self.ttl
        return [row for row in self._rows if row.ends_at > now]


class Suppressor:
    """Per ingest batch: active silences, and which gateways have an open gateway_offline
    (asked only when the batch holds an offline-type incident)."""

    def __init__(self, session: Session, messages: Iterable[tuple[str, str]], now: datetime,
                 config: LifecycleConfig, silences: SilenceCache) -> None:
        self.silences = silences.active(session, now)
        self.offline_types = set(config.noise_under_gateway_offline)
        gateway_ids = sorted({g for g, type_ in messages if type_ in self.offline_types})
        self.offline = set(session.scalars(
            select(Incident.point_id).where(
                Incident.type == GATEWAY_OFFLINE, Incident.point_id.in_(gateway_ids),
                Incident.state.not_in(FINAL_STATES))
        )) if gateway_ids else set()

    def reason(self, incident: Incident) -> str | None:
        if incident.type in self.offline_types and incident.gateway in self.offline:
            return GATEWAY_OFFLINE
        return silenced(self.silences, incident)


def silenced(silences: Iterable[Silence], incident: Incident) -> str | None:
    """``silence:<id>`` of the first silence every given field of which matches ``incident``."""
    for silence in silences:
        if all(want is None or want == have for want, have in (
                (silence.gateway, incident.gateway), (silence.point_id, incident.point_id),
                (silence.grid_id, incident.grid_id), (silence.type, incident.type))):
            return f"silence:{silence.id}"
    return None


def gateway_grid(session: Session, gateway: str) -> str | None:
    """The grid a gateway serves when all its points are in one grid; else None (control)."""
    grids = set(session.scalars(select(Point.grid_id).where(Point.gateway == gateway)))
    return grids.pop() if len(grids) == 1 else None


def gateway_went_offline(session: Session, gateway: str, ts: datetime, now: datetime,
                         config: LifecycleConfig) -> Incident | None:
    """Open (or re-activate) the gateway's gateway_offline incident; None if already active."""
    incident = session.scalars(select(Incident).where(
        Incident.point_id == gateway, Incident.type == GATEWAY_OFFLINE,
        Incident.state.not_in(FINAL_STATES)).with_for_update()).first()
    if incident is not None:
        if incident.alarm == AlarmState.ACTIVE.value:
            return None
        incident.alarm = AlarmState.ACTIVE.value
        incident.count += 1
        incident.last_seen_at = max(incident.last_seen_at, ts)
        return incident
    severity = "major"
    incident = Incident(
        id=new_event_id(), point_id=gateway, grid_id=gateway_grid(session, gateway),
        gateway=gateway, type=GATEWAY_OFFLINE, severity=severity, state="new",
        alarm=AlarmState.ACTIVE.value, opened_at=ts, last_seen_at=ts, count=1, value=None,
        message=f"gateway {gateway} is offline", first_event_id=new_event_id(),
        state_changed_at=now, closed_at=None, backfilled=False,
        level=LEVEL_FOR_SEVERITY[severity],
    )
    # A gateway stopped for maintenance under a silence (its gateway, grid, or the type
    # gateway_offline) is recorded but pages no one.
    incident.suppressed = silenced(
        session.scalars(select(Silence).where(Silence.ends_at > now)), incident)
    session.add(incident)
    on_opened(session, incident, config, now)
    return incident


def gateway_came_back(session: Session, gateway: str, ts: datetime) -> Incident | None:
    """Clear the alarm of the open gateway_offline incident (a person still closes it)."""
    incident = session.scalars(select(Incident).where(
        Incident.point_id == gateway, Incident.type == GATEWAY_OFFLINE,
        Incident.state.not_in(FINAL_STATES), Incident.alarm == AlarmState.ACTIVE.value)
        .with_for_update()).first()
    if incident is None:
        return None
    incident.alarm = AlarmState.CLEARED.value
    incident.last_seen_at = max(incident.last_seen_at, ts)
    return incident
