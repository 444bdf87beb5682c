"""GET /api/v1/unassigned-points: points gateways report that the registry does not assign,
for the installer to register (the control room's: ids may name any building)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel

from ..db.unassigned import UnassignedPoint, UnassignedStore
from ..registry.registry_file import ALL_SEEING_ROLES
from .deps import Context, CurrentViewer

router = APIRouter(tags=["registry"])


class UnassignedPointView(BaseModel):
    gateway: str
    point: str
    first_seen: datetime  # device times
    last_seen: datetime
    count: int  # readings, incidents and access events kept

    @classmethod
    def of(cls, row: UnassignedPoint) -> UnassignedPointView:
        return cls(gateway=row.gateway, point=row.point, first_seen=row.first_seen,
                   last_seen=row.last_seen, count=row.count)


@router.get("/api/v1/unassigned-points", response_model=list[UnassignedPointView])
def list_unassigned_points(viewer: CurrentViewer, context: Context,
                           gateway: str | None = None) -> list[UnassignedPointView]:
    """Gateway by gateway, most recently heard of first; a registry load that assigns a point
    takes it off the list. Written by ingest every few seconds."""
    if viewer.role not in ALL_SEEING_ROLES:
        roles = " or ".join(sorted(ALL_SEEING_ROLES))
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"unassigned points need role {roles} (you are {viewer.role})")
    rows = UnassignedStore(context.factory).all(gateway=gateway)
    return [UnassignedPointView.of(row) for row in rows]
