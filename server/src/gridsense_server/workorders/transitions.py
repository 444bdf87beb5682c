"""Work-order changes in the database: an incident opened, a person's action, a system action.

Each change writes one history row (who, when, from → to, note, photos), moves the SLA clocks
(a deferral pauses them: the time spent deferred is added to both deadlines on resumption) and
reschedules escalation — all in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import LifecycleConfig
from ..db.models import Incident, IncidentTransition
from ..registry.viewers import Viewer
from .escalation_steps import schedule_for_state
from .states import LEVEL_FOR_SEVERITY, Refused, check_close_while_active, decide

SYSTEM = "system"
# Heads the history note of a close made while the alarm was still active.
ALARM_ACTIVE_NOTE = "告警仍在持续时结案，原因 / closed with the alarm active, reason: "


def record(session: Session, incident: Incident, action: str, to_state: str, *, actor: str,
           role: str | None, now: datetime, note: str = "",
           photos: list[str] | None = None) -> IncidentTransition:
    entry = IncidentTransition(
        incident_id=incident.id, action=action, from_state=incident.state, to_state=to_state,
        actor=actor, role=role, at=now, note=note, photos=photos or None,
    )
    session.add(entry)
    return entry


def on_opened(session: Session, incident: Incident, config: LifecycleConfig, now: datetime,
              *, note: str = "") -> None:
    """Stamp a freshly opened incident: level, SLA deadlines, policy, history, first step."""
    incident.level = LEVEL_FOR_SEVERITY.get(incident.severity, "grid")
    accept_s, resolve_s = config.sla.deadlines(incident.type, incident.severity)
    incident.accept_due_at = now + timedelta(seconds=accept_s)
    incident.resolve_due_at = now + timedelta(seconds=resolve_s)
    incident.policy = config.policy_for(incident.type, incident.severity)[0]
    entry = record(session, incident, "open", "new", actor=SYSTEM, role=None, now=now, note=note)
    entry.from_state = None
    schedule_for_state(session, incident, config, now, cancel=False)


def on_severity_raised(incident: Incident) -> None:
    """A repeat raised the severity: the incident moves up to the matching level."""
    level = LEVEL_FOR_SEVERITY.get(incident.severity, "grid")
    if LEVEL_ORDER[level] > LEVEL_ORDER[incident.level]:
        incident.level = level


LEVEL_ORDER = {"grid": 0, "community": 1, "street": 2}
# Actions that hand work back or put it off say why (the next person reads it in the history).
REASON_REQUIRED = {"return": "退回", "defer": "延期"}


def check_grid(incident: Incident, viewer: Viewer) -> None:
    if viewer.sees_grid(incident.grid_id):
        return
    owned = ", ".join(sorted(viewer.grids or ())) or "no grid"
    where = f"grid {incident.grid_id}" if incident.grid_id else "no registered grid"
    raise Refused(403, f"incident {incident.id} belongs to {where}; {viewer.username} "
                       f"({viewer.role}) acts only on {owned}")


def act(session: Session, incident_id: str, viewer: Viewer, action: str, config: LifecycleConfig,
        now: datetime, *, note: str = "", photos: list[str] | None = None,
        passed: bool = True, reason: str = "") -> tuple[Incident, IncidentTransition]:
    """A person's action, checked by role and grid (and closing an incident whose alarm is
    still active, by its reason and the per-type setting); raises Refused saying why not."""
    incident = session.get(Incident, incident_id, with_for_update=True)
    if incident is None:
        raise Refused(404, f"no incident {incident_id}")
    check_grid(incident, viewer)
    target = decide(incident.state, action, viewer.role, incident.level, passed=passed)
    if action in REASON_REQUIRED:
        # The reason, or failing that the note (a page that has only a note box), is kept.
        why = reason.strip() or note.strip()
        if not why:
            raise Refused(400, f"{REASON_REQUIRED[action]}须填写原因（reason）/ {action} needs "
                               "a reason")
        note = why if not reason.strip() or not note.strip() else f"{why}\n{note}"
    if check_close_while_active(incident.type, incident.alarm, target, reason,
                                config.refuse_close_while_active):
        note = f"{ALARM_ACTIVE_NOTE}{reason.strip()}" + (f"\n{note}" if note else "")
    entry = transition(session, incident, action, target, config, now, actor=viewer.username,
                       role=viewer.role, note=note, photos=photos)
    return incident, entry


def transition(session: Session, incident: Incident, action: str, target: str,
               config: LifecycleConfig, now: datetime, *, actor: str, role: str | None,
               note: str = "", photos: list[str] | None = None) -> IncidentTransition:
    """Apply a decided transition: clocks, owner, history, escalation."""
    if incident.state == "deferred" and target != "deferred" and incident.paused_at is not None:
        paused = now - incident.paused_at
        incident.accept_due_at = _later(incident.accept_due_at, paused)
        incident.resolve_due_at = _later(incident.resolve_due_at, paused)
        incident.paused_at = None
    if target == "deferred":
        incident.paused_at = now
    if action == "accept" and incident.state != "deferred":
        incident.accepted_by, incident.accepted_at = actor, now
    if target in ("new", "returned"):
        incident.accepted_by = incident.accepted_at = None
    if target in ("closed", "invalid"):
        incident.closed_at = now
    entry = record(session, incident, action, target, actor=actor, role=role, now=now,
                   note=note, photos=photos)
    incident.state = target
    incident.state_changed_at = now
    schedule_for_state(session, incident, config, now)
    return entry


def _later(moment: datetime | None, by: timedelta) -> datetime | None:
    return None if moment is None else moment + by


def history(session: Session, incident_id: str) -> list[IncidentTransition]:
    return list(session.scalars(
        select(IncidentTransition).where(IncidentTransition.incident_id == incident_id)
        .order_by(IncidentTransition.id)
    ))
