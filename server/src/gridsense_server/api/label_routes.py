"""Points' check-in labels for those who print and mount them (control, installers): one
label's text and code, a print-ready sheet of labels, and rotation (a new version voids every
copy printed before, e.g. after a label was photographed and shared)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from gridsense_protocol import utc_now

from ..audit import record
from ..db.models import Grid, Point
from ..onsite.label_sheet import STYLESHEET, LabelCard, sheet_html
from ..onsite.labels import LabelSigner, current_version, rotate
from ..registry.grids import with_descendants
from ..registry.viewers import Viewer
from .checkin_routes import checkin_parts
from .deps import Context, CurrentViewer
from .web_auth import address_of

router = APIRouter()
LABEL_ROLES = frozenset({"control", "installer"})
SHEET_MAX = 500  # points on one sheet
STYLESHEET_PATH = "/labels/sheet.css"


class LabelView(BaseModel):
    point: str
    version: int
    qr: str  # the QR code's text
    code: str  # as printed: "1234 5678"
    point_name: str
    location: str | None


def _require_labeller(viewer: Viewer) -> None:
    if viewer.role not in LABEL_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"labels are printed by control or installers, not a {viewer.role}")


def _point(session: Session, viewer: Viewer, point_id: str) -> Point:
    point = session.get(Point, point_id)
    if point is None or not viewer.sees_grid(point.grid_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no point {point_id!r} of yours")
    return point


def _cards(session: Session, signer: LabelSigner, points: list[Point]) -> list[LabelCard]:
    names = dict(session.execute(select(Grid.id, Grid.name).where(
        Grid.id.in_({p.grid_id for p in points}))).all())
    return [LabelCard(signer.label(p.id, current_version(session, p.id)), p.name,
                      p.location or "", names.get(p.grid_id, p.grid_id)) for p in points]


@router.get("/api/v1/points/{point_id}/label", response_model=LabelView, tags=["labels"])
def get_label(point_id: str, viewer: CurrentViewer, context: Context,
              request: Request) -> LabelView:
    _require_labeller(viewer)
    signer = checkin_parts(request).signer
    with context.factory() as session:
        point = _point(session, viewer, point_id)
        label = signer.label(point.id, current_version(session, point.id))
        return LabelView(point=point.id, version=label.version, qr=label.qr_text,
                         code=label.code_display, point_name=point.name,
                         location=point.location)


@router.post("/api/v1/points/{point_id}/label/rotate", response_model=LabelView,
             tags=["labels"])
def rotate_label(point_id: str, viewer: CurrentViewer, context: Context,
                 request: Request) -> LabelView:
    """A new label for the point: every copy printed before stops checking anyone in."""
    _require_labeller(viewer)
    signer = checkin_parts(request).signer
    with context.factory.begin() as session:
        point = _point(session, viewer, point_id)
        version = rotate(session, point.id, viewer.username, utc_now())
        record(session, viewer.username, "label.rotate", point.id, {"version": version},
               address_of(request))
        label = signer.label(point.id, version)
        return LabelView(point=point.id, version=version, qr=label.qr_text,
                         code=label.code_display, point_name=point.name,
                         location=point.location)


@router.get("/labels/sheet", response_class=HTMLResponse, tags=["labels"])
def label_sheet(viewer: CurrentViewer, context: Context, request: Request,
                grid: Annotated[str | None, Query(description="a grid and its micro-grids")] = None,
                point: Annotated[list[str] | None, Query(description="these points")] = None,
                ) -> HTMLResponse:
    """A print-ready page of labels (A4, two across): every point of yours, of ``grid``, or
    the ``point``s named."""
    _require_labeller(viewer)
    signer = checkin_parts(request).signer
    with context.factory() as session:
        query = select(Point).order_by(Point.grid_id, Point.id)
        if grid is not None:
            query = query.where(Point.grid_id.in_(sorted(with_descendants(session, {grid}))))
        if point:
            query = query.where(Point.id.in_(point[:SHEET_MAX]))
        points = [p for p in session.scalars(query.limit(SHEET_MAX * 4))
                  if viewer.sees_grid(p.grid_id)][:SHEET_MAX]
        cards = _cards(session, signer, points)
        record(session, viewer.username, "label.print", grid or ",".join(point or [])[:200],
               {"points": len(cards)}, address_of(request))
        session.commit()
    return HTMLResponse(sheet_html(cards, STYLESHEET_PATH),
                        headers={"Cache-Control": "no-store"})


@router.get(STYLESHEET_PATH, include_in_schema=False)
def label_sheet_css() -> Response:
    return Response(STYLESHEET, media_type="text/css",
                    headers={"Cache-Control": "public, max-age=3600"})
