"""Reconcile pass uses across gateways: a use limit is counted per gateway (a gateway cut off
from the server can only count its own), so a single-use pass shown at several gateways can
open each once. Once the access events reach the server, a pass granted more often in total
than its limit becomes one ``pass_overuse`` incident, through the incident path the gateway
offline incident takes (SLA clocks, policy, escalation, the live board), once per pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridsense_protocol import AlarmState, new_event_id, utc_now

from ..config import LifecycleConfig
from ..db.access_models import AccessLogEntry
from ..db.models import Incident, Silence
from ..db.pass_models import AccessPass
from ..workorders.noise import silenced
from ..workorders.states import LEVEL_FOR_SEVERITY
from ..workorders.transitions import on_opened

PASS_OVERUSE = "pass_overuse"
SEVERITY = "minor"
MAX_PER_ROUND = 100  # incidents opened per reconciliation (the rest wait for the next)


@dataclass(frozen=True, slots=True)
class Overuse:
    pass_id: str
    uses: int
    granted: int
    gateways: int


def find(session: Session, now: datetime | None = None) -> list[Overuse]:
    """Passes with a use limit granted more often than it, not yet reported."""
    granted = func.count(AccessLogEntry.id)
    rows = session.execute(
        select(AccessPass.pass_id, AccessPass.uses, granted,
               func.count(func.distinct(AccessLogEntry.gateway)))
        .join(AccessLogEntry, AccessLogEntry.pass_id == AccessPass.pass_id)
        .where(AccessPass.uses > 0, AccessPass.overuse_incident.is_(None),
               AccessLogEntry.result == "granted")
        .group_by(AccessPass.pass_id, AccessPass.uses)
        .having(granted > AccessPass.uses)
        .limit(MAX_PER_ROUND)).all()
    return [Overuse(r[0], r[1], r[2], r[3]) for r in rows]


def open_incident(session: Session, found: Overuse, config: LifecycleConfig,
                  now: datetime | None = None) -> Incident | None:
    """The pass's ``pass_overuse`` incident (in the caller's transaction); None when another
    process reported it first."""
    now = now or utc_now()
    row = session.get(AccessPass, found.pass_id, with_for_update=True)
    if row is None or row.overuse_incident is not None:
        return None
    last = session.scalars(select(AccessLogEntry).where(
        AccessLogEntry.pass_id == found.pass_id, AccessLogEntry.result == "granted")
        .order_by(AccessLogEntry.ts.desc()).limit(1)).first()
    if last is None:
        return None
    who = f"访客 {row.visitor_name}" if row.visitor_name else f"住户 {row.holder}"
    message = (f"通行证超次使用：{who}（邀请人 {row.holder}）的通行证限 {found.uses} 次，"
               f"在 {found.gateways} 个网关共放行 {found.granted} 次 / pass {row.pass_id} "
               f"limited to {found.uses} uses was granted {found.granted} times at "
               f"{found.gateways} gateways")
    incident = Incident(
        id=new_event_id(), point_id=last.point_id, grid_id=last.grid_id, gateway=last.gateway,
        type=PASS_OVERUSE, severity=SEVERITY, state="new", alarm=AlarmState.CLEARED.value,
        opened_at=now, last_seen_at=last.ts, count=found.granted, value=float(found.granted),
        threshold=float(found.uses), unit=None, message=message[:500],
        first_event_id=new_event_id(), state_changed_at=now, closed_at=None, backfilled=False,
        level=LEVEL_FOR_SEVERITY[SEVERITY])
    incident.suppressed = silenced(
        session.scalars(select(Silence).where(Silence.ends_at > now)), incident)
    session.add(incident)
    on_opened(session, incident, config, now, note=f"pass {row.pass_id}")
    row.overuse_incident = incident.id
    return incident
