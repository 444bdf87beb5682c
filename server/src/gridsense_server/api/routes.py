"""REST endpoints: token, gateways, health (incidents: incident_routes.py). Blocking handlers
(plain ``def``) run in FastAPI's thread pool, where their synchronous database reads belong."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import select

from ..db.models import Gateway, Point
from ..db.models import Staff as StaffRow
from ..db.sequences import summaries
from ..gateways.views import GatewayView
from ..registry.passwords import verify_password
from . import dead_letter_routes, health_routes, incident_routes, silence_routes
from .deps import Context, CurrentViewer
from .tokens import TokenRequest, TokenResponse

router = APIRouter()
router.include_router(incident_routes.router)
router.include_router(silence_routes.router)
router.include_router(dead_letter_routes.router)
router.include_router(health_routes.router)


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
