"""REST endpoints: token, incidents, gateways, health. Blocking handlers (plain ``def``) run in
FastAPI's thread pool, which is where their synchronous database reads belong."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select

from ..access import Viewer, with_descendants
from ..db.models import FINAL_STATES, INCIDENT_STATES, Gateway, Incident, IncidentEvent, Point
from ..db.models import Staff as StaffRow
from ..passwords import verify_password
from ..schemas import GatewayView, IncidentDetail, IncidentView, TokenRequest, TokenResponse
from ..sequences import summaries
from .deps import Context, CurrentViewer

router = APIRouter()

StateFilter = Annotated[
    str | None,
    Query(description="a work-order state, or `open` for every state but closed/invalid",
          pattern="^(open|" + "|".join(INCIDENT_STATES) + ")$"),
]


@router.post("/api/v1/auth/token", response_model=TokenResponse, tags=["auth"])
def issue_token(body: TokenRequest, context: Context) -> TokenResponse:
    with context.factory() as session:
        staff = session.get(StaffRow, body.username)
        password_hash = staff.password_hash if staff is not None else None
    # Verify even for an unknown user (against a dummy hash): same time either way.
    if not verify_password(password_hash, body.password):
        context.counters.inc("api.login_failures")
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password",
                            headers={"WWW-Authenticate": "Bearer"})
    context.counters.inc("api.logins")
    return TokenResponse(access_token=context.signer.issue(body.username),
                         expires_in=context.signer.ttl_s)


def _visible(query: Any, viewer: Viewer) -> Any:
    if viewer.grids is None:
        return query
    return query.where(Incident.grid_id.in_(sorted(viewer.grids)))


@router.get("/api/v1/incidents", response_model=list[IncidentView], tags=["incidents"])
def list_incidents(
    viewer: CurrentViewer,
    context: Context,
    state: StateFilter = None,
    type: Annotated[str | None, Query(max_length=48)] = None,
    grid: Annotated[str | None, Query(description="a grid and its micro-grids")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[IncidentView]:
    """Newest first (by the device time of the latest event), only the caller's grids."""
    query = _visible(select(Incident), viewer)
    if state == "open":
        query = query.where(Incident.state.not_in(FINAL_STATES))
    elif state is not None:
        query = query.where(Incident.state == state)
    if type is not None:
        query = query.where(Incident.type == type)
    with context.factory() as session:
        if grid is not None:
            query = query.where(Incident.grid_id.in_(sorted(with_descendants(session, {grid}))))
        query = query.order_by(Incident.last_seen_at.desc(), Incident.id.desc()).limit(limit)
        return [IncidentView.of(row) for row in session.scalars(query)]


@router.get("/api/v1/incidents/{incident_id}", response_model=IncidentDetail, tags=["incidents"])
def get_incident(incident_id: str, viewer: CurrentViewer, context: Context) -> IncidentDetail:
    with context.factory() as session:
        incident = session.get(Incident, incident_id)
        if incident is None or not viewer.sees_grid(incident.grid_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such incident")
        event_ids = list(session.scalars(
            select(IncidentEvent.event_id).where(IncidentEvent.incident_id == incident_id)
            .order_by(IncidentEvent.ts, IncidentEvent.id)
        ))
        return IncidentDetail(**IncidentView.fields_of(incident), event_ids=event_ids)


@router.get("/api/v1/gateways", response_model=list[GatewayView], tags=["gateways"])
def list_gateways(viewer: CurrentViewer, context: Context) -> list[GatewayView]:
    """Control sees every gateway; others the gateways serving points in their grids."""
    query = select(Gateway).order_by(Gateway.id)
    if viewer.grids is not None:
        serving = select(Point.gateway).where(Point.grid_id.in_(sorted(viewer.grids)))
        query = query.where(Gateway.id.in_(serving))
    with context.factory() as session:
        rows = list(session.scalars(query))
        sequences = summaries(session, [r.id for r in rows])
        return [GatewayView.of(row, sequences.get(row.id)) for row in rows]


@router.get("/healthz", tags=["health"])
def healthz(context: Context) -> dict[str, Any]:
    """Liveness plus every counter (``ingest.invalid.<reason>``, ``influx.written_lines``...)."""
    return {"status": "ok", **context.gauges(), **context.counters.snapshot()}
