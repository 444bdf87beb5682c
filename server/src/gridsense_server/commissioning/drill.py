"""The commissioning drill: a marked incident paged to the installer through the delivery log
(the app and their own channels), closed by the system once a channel delivered it or the
installer opened it, or once nothing delivered it in time. It is never escalated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridsense_protocol import new_event_id

from ..config import LifecycleConfig
from ..db.commissioning_models import CommissioningRun
from ..db.models import Incident, Notification, Point, Staff
from ..db.page_reads import PageRead
from ..notify.links import LinkSigner
from ..notify.messages import headline
from ..notify.page_facts import DRILL_WHY
from ..notify.pages import enqueue, pages_for
from ..workorders.transitions import SYSTEM, record, transition

DRILL_TYPE = "commissioning_drill"
PENDING, REACHED, ACKNOWLEDGED, UNREACHED = "pending", "reached", "acknowledged", "unreached"
REACHED_STATUSES = ("sent", "digested")  # a vendor took it, or the person's app showed it
# A drill that reached the installer is still watched this long for their opening it (the
# round trip), then left alone.
ACK_WATCH = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class DrillSettled:
    run_id: str
    outcome: str
    incident: Incident


def drill_point(session: Session, gateway: str, grids: frozenset[str] | None) -> Point | None:
    """The point the drill is about: the gateway's first point the installer sees (so they can
    open the page), else its first point; None when the gateway has none yet."""
    points = list(session.scalars(select(Point).where(Point.gateway == gateway)
                                  .order_by(Point.id)))
    seen = [p for p in points if grids is None or p.grid_id in grids]
    return (seen or points or [None])[0]


def open_drill(session: Session, gateway: str, point: Point | None, installer: Staff,
               channels: list[str], links: LinkSigner, now: datetime) -> Incident:
    """The drill incident and its pages to ``installer`` (in the caller's transaction)."""
    incident = Incident(
        id=new_event_id(), point_id=point.id if point is not None else gateway,
        grid_id=point.grid_id if point is not None else None, gateway=gateway, type=DRILL_TYPE,
        severity="minor", state="new", alarm="cleared", opened_at=now, last_seen_at=now,
        count=1, value=None, threshold=None, unit=None,
        message="安装调试演练，无需处理 / commissioning drill: nothing to do",
        first_event_id=new_event_id(), state_changed_at=now, closed_at=None, backfilled=False,
        level="grid", drill=True)
    session.add(incident)
    entry = record(session, incident, "open", "new", actor=SYSTEM, role=None, now=now,
                   note=f"commissioning drill for {installer.username}")
    entry.from_state = None
    wanted = ["app", *(channels or sorted(installer.contacts or {}))]
    pages = pages_for(session, incident, [installer.username], list(dict.fromkeys(wanted)))
    place = point.name if point is not None else gateway
    step = f"drill@{int(now.timestamp() * 1000)}"
    enqueue(session, incident, step, 0, pages, headline("minor", DRILL_WHY, place, DRILL_TYPE),
            incident.message, links, now)
    return incident


def acknowledged_at(session: Session, run: CommissioningRun) -> datetime | None:
    """When the installer first opened the drill (its page's link, or the report's button)."""
    if run.drill_incident_id is None:
        return None
    return session.scalar(select(func.min(PageRead.read_at)).where(
        PageRead.incident_id == run.drill_incident_id, PageRead.username == run.installer))


def _reached(session: Session, incident_id: str) -> tuple[datetime, str] | None:
    row = session.execute(
        select(Notification.sent_at, Notification.channel)
        .where(Notification.incident_id == incident_id,
               Notification.status.in_(REACHED_STATUSES), Notification.sent_at.is_not(None))
        .order_by(Notification.sent_at).limit(1)).first()
    return None if row is None else (row[0], row[1])


def settle_run(session: Session, run: CommissioningRun, lifecycle: LifecycleConfig,
               timeout: timedelta, now: datetime) -> DrillSettled | None:
    """Bring the run's drill up to date: note delivery and acknowledgement, close the incident
    once it reached the installer (or timed out). The settled drill when it closed now."""
    if run.drill_incident_id is None:
        return None
    if run.drill_reached_at is None and (reached := _reached(session, run.drill_incident_id)):
        run.drill_reached_at, run.drill_reached_via = reached
    if run.drill_acknowledged_at is None:
        run.drill_acknowledged_at = acknowledged_at(session, run)
    if run.drill_acknowledged_at is not None:
        outcome = ACKNOWLEDGED
    elif run.drill_reached_at is not None:
        outcome = REACHED
    elif now - run.started_at > timeout:
        outcome = UNREACHED
    else:
        return None
    run.drill_outcome = outcome
    if run.drill_closed_at is not None:
        return None
    incident = session.get(Incident, run.drill_incident_id, with_for_update=True)
    run.drill_closed_at = now
    if incident is None or incident.state in ("closed", "invalid"):
        return None
    note = {ACKNOWLEDGED: "安装人员已确认收到 / acknowledged by the installer",
            REACHED: f"已送达（{run.drill_reached_via}）/ delivered by {run.drill_reached_via}",
            UNREACHED: "超时未送达 / not delivered in time"}[outcome]
    transition(session, incident, "drill_close", "closed", lifecycle, now, actor=SYSTEM,
               role=None, note=note)
    return DrillSettled(run.id, outcome, incident)


def runs_to_settle(session: Session, now: datetime) -> list[CommissioningRun]:
    """Runs whose drill is on its way, or reached and not yet opened (within ACK_WATCH)."""
    return list(session.scalars(
        select(CommissioningRun)
        .where((CommissioningRun.drill_outcome == PENDING)
               | ((CommissioningRun.drill_outcome == REACHED)
                  & (CommissioningRun.started_at > now - ACK_WATCH)))
        .order_by(CommissioningRun.started_at).limit(200).with_for_update()))
