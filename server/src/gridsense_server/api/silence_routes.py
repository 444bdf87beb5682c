"""Silences over HTTP: matching incidents are recorded but page no one until the silence ends.

Control may silence anything; a leader, duty officer or command centre only inside their own
grids (``grid`` is then required). Workers cannot silence.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import select

from gridsense_protocol import new_event_id, utc_now

from ..audit import record
from ..db.models import Silence
from ..workorders.states import SUPERVISORS
from .deps import Context, CurrentViewer
from .web_auth import address_of

router = APIRouter()


class SilenceRequest(BaseModel):
    gateway: str | None = None
    point: str | None = None
    grid: str | None = None
    type: str | None = None
    minutes: Annotated[float, Field(gt=0, le=7 * 24 * 60)]
    note: Annotated[str, Field(max_length=500)] = ""


class SilenceView(BaseModel):
    id: str
    gateway: str | None
    point: str | None
    grid: str | None
    type: str | None
    ends_at: datetime
    created_by: str
    note: str

    @classmethod
    def of(cls, row: Silence) -> SilenceView:
        return cls(id=row.id, gateway=row.gateway, point=row.point_id, grid=row.grid_id,
                   type=row.type, ends_at=row.ends_at, created_by=row.created_by, note=row.note)


@router.post("/api/v1/silences", response_model=SilenceView, status_code=201, tags=["silences"])
def create_silence(body: SilenceRequest, viewer: CurrentViewer, context: Context,
                   request: Request) -> SilenceView:
    if viewer.role not in SUPERVISORS:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"a {viewer.role} may not silence; allowed: "
                            f"{', '.join(sorted(SUPERVISORS))}")
    if not any((body.gateway, body.point, body.grid, body.type)):
        raise HTTPException(422, "name at least one of gateway, point, grid, type")
    if viewer.grids is not None and (body.grid is None or body.grid not in viewer.grids):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"{viewer.username} may silence only inside their grids "
                            f"({', '.join(sorted(viewer.grids)) or 'none'}): give grid")
    row = Silence(id=new_event_id(), gateway=body.gateway, point_id=body.point,
                  grid_id=body.grid, type=body.type,
                  ends_at=utc_now() + timedelta(minutes=body.minutes),
                  created_by=viewer.username, note=body.note)
    with context.factory.begin() as session:
        session.add(row)
        record(session, viewer.username, "silence.create", row.id,
               {"gateway": body.gateway, "point": body.point, "grid": body.grid,
                "type": body.type, "minutes": body.minutes, "note": body.note[:200]},
               address_of(request))
    context.counters.inc("api.silences_created")
    return SilenceView.of(row)


@router.get("/api/v1/silences", response_model=list[SilenceView], tags=["silences"])
def active_silences(viewer: CurrentViewer, context: Context) -> list[SilenceView]:
    with context.factory() as session:
        rows = session.scalars(select(Silence).where(Silence.ends_at > utc_now())
                               .order_by(Silence.ends_at))
        return [SilenceView.of(r) for r in rows
                if viewer.grids is None or r.grid_id in viewer.grids]
