"""Incidents over HTTP: list and filter, one with its history, act on it, open a signed link.

Actions are checked by role (the state machine's table) and by grid (a worker acts only on
their grids' incidents); a refusal says why, with 403 (who), 404 (what) or 409 (state).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import RedirectResponse
from sqlalchemy import and_, case, or_, select
from sqlalchemy.orm import Session

from gridsense_protocol import utc_now

from ..audit import record
from ..config import LifecycleConfig
from ..db.models import FINAL_STATES, INCIDENT_STATES, Incident, Notification
from ..db.page_reads import mark_read
from ..notify.links import LinkSigner
from ..onsite.photo_store import check_attached
from ..registry.grids import with_descendants
from ..registry.viewers import Viewer
from ..workorders.states import USER_ACTIONS, WAITING, Refused, allowed_actions
from ..workorders.transitions import act, check_grid, history
from ..workorders.views import (
    ActionRequest,
    ActionResult,
    IncidentDetail,
    IncidentView,
    TransitionView,
    named_incidents,
    names_of,
)
from .action_once import apply_once
from .context import ApiContext
from .deps import Context, CurrentViewer, visible_incident
from .web_auth import address_of

router = APIRouter()


@dataclass
class IncidentActionContext:
    """What the action endpoints need beyond the ApiContext (``app.state.incident_actions``)."""

    config: LifecycleConfig
    links: LinkSigner
    on_change: Callable[[], None] = lambda: None  # wake the scheduler and the notifier


def action_context(request: Request) -> IncidentActionContext:
    actions = getattr(request.app.state, "incident_actions", None)
    if actions is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "lifecycle not configured")
    return actions


StateFilter = Annotated[
    str | None,
    Query(description="a work-order state, or `open` for every state but closed/invalid",
          pattern="^(open|" + "|".join(INCIDENT_STATES) + ")$"),
]


def visible_query(viewer: Viewer) -> Any:
    """Incidents the viewer sees: control all of them, others their grids'."""
    query = select(Incident)
    if viewer.grids is None:
        return query
    return query.where(Incident.grid_id.in_(sorted(viewer.grids)))


def overdue_clause(now: datetime) -> Any:
    return or_(and_(Incident.state.in_(WAITING), Incident.accept_due_at < now),
               and_(Incident.state == "accepted", Incident.resolve_due_at < now))


RECENT_ORDER = (Incident.last_seen_at.desc(), Incident.id.desc())
_SEVERITY_RANK = case({"critical": 0, "major": 1, "minor": 2}, value=Incident.severity, else_=3)
# The deadline now running: acceptance while waiting, resolution while handled; none while
# resolved (awaiting verification) or deferred (the clock is paused), so those sort last.
_RUNNING_DEADLINE = case((Incident.state.in_(WAITING), Incident.accept_due_at),
                         (Incident.state == "accepted", Incident.resolve_due_at), else_=None)


def urgency_order(now: datetime) -> tuple[Any, ...]:
    """Overdue first, then severity, then the least time left; ties: the newest first."""
    return (case((overdue_clause(now), 0), else_=1), _SEVERITY_RANK,
            _RUNNING_DEADLINE.asc().nulls_last(), Incident.id.desc())


def mine_first(username: str) -> Any:
    """0 for incidents paged to ``username`` or accepted by them, else 1."""
    paged = select(Notification.incident_id).where(Notification.recipient == username)
    return case((or_(Incident.accepted_by == username, Incident.id.in_(paged)), 0), else_=1)


@router.get("/api/v1/incidents", response_model=list[IncidentView], tags=["incidents"])
def list_incidents(
    viewer: CurrentViewer,
    context: Context,
    state: StateFilter = None,
    type: Annotated[str | None, Query(max_length=48)] = None,
    grid: Annotated[str | None, Query(description="a grid and its micro-grids")] = None,
    severity: Annotated[str | None, Query(pattern="^(minor|major|critical)$")] = None,
    overdue: Annotated[bool | None, Query(description="only (not) overdue ones")] = None,
    since: Annotated[datetime | None, Query(description="opened at or after (ISO time)")] = None,
    until: Annotated[datetime | None, Query(description="opened before (ISO time)")] = None,
    open_only: Annotated[bool, Query(alias="open", description=(
        "hide finished work (closed, invalid); ignored when `state` names a state"))] = True,
    order: Annotated[Literal["recent", "urgency", "mine"], Query(description=(
        "recent: latest event first; urgency: overdue first, then severity, then the time "
        "left to the running deadline; mine: what I was paged about or accepted first, "
        "then by urgency (the phone's task list)"))] = "recent",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=100_000, description="rows to skip (paging)")] = 0,
    drill: Annotated[bool, Query(description=(
        "commissioning drills instead of real incidents (never on the board)"))] = False,
) -> list[IncidentView]:
    """Only the caller's grids, ``limit`` at a time; by default open work only, never a
    commissioning drill."""
    now = utc_now()
    query = visible_query(viewer).where(Incident.drill.is_(drill))
    if state == "open" or (state is None and open_only):
        query = query.where(Incident.state.not_in(FINAL_STATES))
    elif state is not None:
        query = query.where(Incident.state == state)
    if type is not None:
        query = query.where(Incident.type == type)
    if severity is not None:
        query = query.where(Incident.severity == severity)
    if overdue is not None:
        clause = overdue_clause(now)
        query = query.where(clause if overdue else ~clause)
    for bound, compare in ((since, Incident.opened_at.__ge__), (until, Incident.opened_at.__lt__)):
        if bound is not None:
            if bound.tzinfo is None:
                raise HTTPException(422, "since/until need a time zone (e.g. ...Z)")
            query = query.where(compare(bound))
    with context.factory() as session:
        if grid is not None:
            query = query.where(Incident.grid_id.in_(sorted(with_descendants(session, {grid}))))
        keys = {"urgency": urgency_order(now), "recent": RECENT_ORDER,
                "mine": (mine_first(viewer.username), *urgency_order(now))}[order]
        return named_incidents(session, query.order_by(*keys).offset(offset).limit(limit))


@router.get("/api/v1/incidents/{incident_id}", response_model=IncidentDetail, tags=["incidents"])
def get_incident(incident_id: str, viewer: CurrentViewer, context: Context,
                 via: Annotated[str, Query(pattern="^[a-z0-9_:]{1,32}$",
                                           description="the channel the reader came by")] = "app",
                 ) -> IncidentDetail:
    """Opening it signed in is what counts as reading one's page (``via`` the channel)."""
    with context.factory.begin() as session:
        incident, event_ids = visible_incident(session, viewer, incident_id)
        mark_read(session, incident_id, viewer.username, via, utc_now())
        return IncidentDetail(
            **IncidentView.fields_of(incident, names_of(session, incident)), event_ids=event_ids,
            history=[TransitionView.of(row) for row in history(session, incident_id)],
            actions=allowed_actions(incident.state, viewer.role, incident.level or "grid"),
        )


@router.post("/api/v1/incidents/{incident_id}/{action}", response_model=ActionResult,
             tags=["incidents"], responses={403: {"description": "not your role or grid"},
                                            409: {"description": "not in a state for it"}})
def act_on_incident(
    incident_id: str,
    action: Annotated[str, Path(pattern="^(" + "|".join(USER_ACTIONS) + ")$")],
    body: ActionRequest,
    viewer: CurrentViewer,
    context: Context,
    request: Request,
) -> ActionResult:
    """accept, note, resolve, verify (``passed: false`` = rework), return, defer, invalidate."""
    lifecycle = action_context(request)

    def apply(session: Session) -> ActionResult:
        now = utc_now()
        check_attached(session, incident_id, body.photos)
        incident, entry = act(session, incident_id, viewer, action, lifecycle.config, now,
                              note=body.note, photos=body.photos, passed=body.passed,
                              reason=body.reason)
        detail = {"from": entry.from_state, "to": entry.to_state, "note": body.note[:200]}
        if entry.to_state in FINAL_STATES:  # was the device still alarming, and why close
            detail["alarm"] = incident.alarm
        if body.reason:
            detail["reason"] = body.reason[:500]
        if body.photos:
            detail["photos"] = len(body.photos)
        record(session, viewer.username, f"incident.{action}", incident_id, detail,
               address_of(request))
        session.flush()
        return ActionResult(incident=IncidentView.of(incident, names_of(session, incident)),
                            transition=TransitionView.of(entry))

    try:
        result, again = apply_once(context, viewer, incident_id, action, body.action_id, apply)
    except Refused as refused:
        context.counters.inc(f"api.actions_refused.{refused.status}")
        raise HTTPException(refused.status, refused.reason) from None
    if not again:
        announce(context, lifecycle, action, result)
    return result


def announce(context: ApiContext, lifecycle: IncidentActionContext, action: str,
             result: ActionResult) -> None:
    """After commit: the change to everyone who sees the grid; wake the scheduler."""
    context.counters.inc(f"api.actions.{action}")
    context.hub.publish(result.incident.grid, {"type": "incident", "event": action,
                                               "incident": result.incident.to_json()})
    lifecycle.on_change()


@router.get("/link/{incident_id}", include_in_schema=False)
def open_link(incident_id: str, u: str, e: int, s: str, request: Request,
              context: Context) -> RedirectResponse:
    """A signed link from a message: valid and unexpired → the incident on the web page."""
    if not action_context(request).links.verify(incident_id, u, e, s, utc_now()):
        context.counters.inc("api.bad_links")
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this link is invalid or has expired")
    return RedirectResponse(f"/#incident={incident_id}", status_code=303)


__all__ = ["IncidentActionContext", "action_context", "announce", "check_grid", "router"]
