"""REST endpoints: token, gateways, health (incidents: incident_routes.py; browser sessions:
session_routes.py; the audit log: audit_routes.py). Blocking handlers (plain ``def``) run in
FastAPI's thread pool, where their synchronous database reads belong."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select

from ..db.models import Gateway, Point
from ..db.sequences import summaries
from ..gateways.views import (
    GatewayView,
    config_versions,
    enrolled_gateways,
    points_by_gateway,
)
from ..remote_config.versions import status as remote_config_status
from . import (
    audit_routes,
    checkin_routes,
    dead_letter_routes,
    health_routes,
    inbox_routes,
    incident_routes,
    label_routes,
    notify_routes,
    photo_routes,
    plan_routes,
    registry_routes,
    session_routes,
    silence_routes,
    stats_routes,
    unassigned_routes,
)
from .deps import Context, CurrentViewer
from .login import authenticate
from .tokens import TokenRequest, TokenResponse
from .web_auth import web_auth_of

router = APIRouter()
# Before incident_routes: its POST /api/v1/incidents/{id}/{action} would match these paths.
router.include_router(checkin_routes.router)
router.include_router(photo_routes.router)
router.include_router(incident_routes.router)
router.include_router(silence_routes.router)
router.include_router(dead_letter_routes.router)
router.include_router(health_routes.router)
router.include_router(unassigned_routes.router)
router.include_router(session_routes.router)
router.include_router(audit_routes.router)
router.include_router(notify_routes.router)
router.include_router(registry_routes.router)
router.include_router(stats_routes.router)
router.include_router(plan_routes.router)
router.include_router(inbox_routes.router)
router.include_router(label_routes.router)


@router.post("/api/v1/auth/token", response_model=TokenResponse, tags=["auth"],
             responses={429: {"description": "too many failed sign-ins; see Retry-After"}})
def issue_token(body: TokenRequest, context: Context, request: Request) -> TokenResponse:
    """A bearer token for scripts (the web page uses a session cookie instead)."""
    username = authenticate(context, web_auth_of(request), request, body.username,
                            body.password, via="token")
    return TokenResponse(access_token=context.signer.issue(username),
                         expires_in=context.signer.ttl_s)


@router.get("/api/v1/gateways", response_model=list[GatewayView], tags=["gateways"])
def list_gateways(viewer: CurrentViewer, context: Context) -> list[GatewayView]:
    """Control sees every gateway; others the gateways serving points in their grids. Each
    with its state, the figures of its last health message (CPU, memory, outbox depth, each
    driver and device), its configuration version and its points."""
    query = select(Gateway).order_by(Gateway.id)
    if viewer.grids is not None:
        serving = select(Point.gateway).where(Point.grid_id.in_(sorted(viewer.grids)))
        query = query.where(Gateway.id.in_(serving))
    with context.factory() as session:
        rows = list(session.scalars(query))
        ids = [r.id for r in rows]
        sequences = summaries(session, ids)
        points = points_by_gateway(session, ids)
        enrolled = enrolled_gateways(session, ids)
        configs = config_versions(session, ids)
        remote = {gw: remote_config_status(session, gw) for gw in ids}
        # A worker sees the gateway, and only the points of it in their grids.
        views = [GatewayView.of(row, sequences.get(row.id),
                                [p for p in points.get(row.id, []) if viewer.sees_grid(p.grid)],
                                enrolled=enrolled.get(row.id), config=configs.get(row.id))
                 for row in rows]
        for view in views:
            state = remote[view.id]
            if state.desired_version is not None:
                view.remote_config = state.model_dump(mode="json")
        return views
