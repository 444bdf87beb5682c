"""Site plans over HTTP: per community a plan image, the places of its points and gateways, and
each marker's state. Reads are scoped by the caller's grids; changes are the control room's,
each audited.

The image is served only as an image: its type is the one read from its bytes at upload,
never guessed again by the browser (nosniff), and it carries its own policy, which sandboxes
it and lets it load nothing, should someone open an SVG's address directly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from gridsense_protocol import utc_now

from ..config import PlansConfig
from ..db.plan_models import PlanMarker, SitePlan
from ..plans.scope import Targets, seen_community, targets, visible_communities
from ..plans.state import MarkerState, marker_states
from ..plans.store import (
    EDITING_ROLES,
    Actor,
    delete_plan,
    image_of,
    markers_of,
    place,
    plan_of,
    save_image,
    unplace,
)
from ..registry.names import PointPlace
from ..registry.viewers import Viewer
from ..workorders.states import Refused
from .context import ApiContext
from .deps import Context, CurrentViewer
from .web_auth import address_of

router = APIRouter(tags=["plans"])
IMAGE_PATH = "/api/v1/plans/{community}/image"
# An SVG opened on its own: no script, no plugin, nothing loaded from anywhere.
IMAGE_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox; "
             "frame-ancestors 'self'")
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/svg+xml": "svg"}
T = TypeVar("T")
Kind = Literal["point", "gateway"]


class PlanMeta(BaseModel):
    content_type: str  # image/png | image/jpeg | image/svg+xml, as read from the bytes
    width: int  # pixels (an SVG's user units)
    height: int
    size: int  # bytes
    sha256: str
    uploaded_by: str
    uploaded_at: datetime
    image_url: str

    @classmethod
    def of(cls, plan: SitePlan) -> PlanMeta:
        return cls(content_type=plan.content_type, width=plan.width, height=plan.height,
                   size=plan.size, sha256=plan.sha256, uploaded_by=plan.uploaded_by,
                   uploaded_at=plan.uploaded_at,
                   image_url=IMAGE_PATH.format(community=plan.community_id)
                   + f"?v={plan.sha256[:16]}")


class CommunityPlan(BaseModel):
    community: str
    name: str
    street: str
    street_name: str
    plan: PlanMeta | None  # None: no image uploaded yet


class PlansIndex(BaseModel):
    communities: list[CommunityPlan]
    can_edit: bool  # the caller may upload and place (control)
    tile_url: str | None  # an offline tile server ({z}/{x}/{y}), when configured


class TargetView(BaseModel):
    """A point or gateway of the community, with the registry's names."""

    kind: Kind
    id: str
    name: str | None
    location: str | None = None
    gateway: str | None = None  # a point's gateway
    grid: str | None = None
    grid_name: str | None = None
    micro_grid_name: str | None = None


class MarkerView(TargetView):
    x: float  # fraction of the image's width, from the left
    y: float  # fraction of its height, from the top
    placed_by: str
    placed_at: datetime


class PlanView(BaseModel):
    community: str
    name: str
    street_name: str
    plan: PlanMeta | None
    can_edit: bool
    tile_url: str | None
    markers: list[MarkerView]
    unplaced: list[TargetView]  # the community's points and gateways not on the plan yet
    states: list[MarkerState]  # as GET .../state


class PlanState(BaseModel):
    community: str
    at: datetime
    markers: list[MarkerState]


class Place(BaseModel):
    x: Annotated[float, Field(ge=0, le=1)]
    y: Annotated[float, Field(ge=0, le=1)]


def _config(request: Request) -> PlansConfig:
    return getattr(request.app.state, "plans", None) or PlansConfig()


def _run(context: ApiContext, work: Callable[[Session], T], *, write: bool = False) -> T:
    """``work`` in a session (a transaction when writing); Refused → its HTTP answer."""
    try:
        if write:
            with context.factory.begin() as session:
                return work(session)
        with context.factory() as session:
            return work(session)
    except Refused as refused:
        context.counters.inc(f"api.plans_refused.{refused.status}")
        raise HTTPException(refused.status, refused.reason) from None


def _target(kind: Kind, target: str, seen: Targets) -> TargetView:
    if kind == "gateway":
        return TargetView(kind=kind, id=target, name=seen.gateways.get(target))
    place_: PointPlace = seen.points[target]
    return TargetView(kind=kind, id=target, name=place_.point_name, location=place_.location,
                      gateway=seen.gateway_of.get(target), grid=place_.grid,
                      grid_name=place_.grid_name, micro_grid_name=place_.micro_grid_name)


def _marker(marker: PlanMarker, seen: Targets) -> MarkerView:
    kind: Kind = "point" if marker.kind == "point" else "gateway"
    return MarkerView(**_target(kind, marker.target_id, seen).model_dump(), x=marker.x,
                      y=marker.y, placed_by=marker.placed_by, placed_at=marker.placed_at)


def _plan_view(session: Session, viewer: Viewer, community: str, tile_url: str | None,
               ) -> PlanView:
    names = seen_community(session, viewer, community)
    plan = plan_of(session, community)
    seen = targets(session, viewer, community)
    markers = markers_of(session, community)
    shown = [m for m in markers if seen.has(m.kind, m.target_id)]
    placed = {(m.kind, m.target_id) for m in markers}
    unplaced = ([_target("point", p, seen) for p in seen.points if ("point", p) not in placed]
                + [_target("gateway", g, seen) for g in seen.gateways
                   if ("gateway", g) not in placed])
    return PlanView(community=community, name=names.name, street_name=names.street_name,
                    plan=None if plan is None else PlanMeta.of(plan),
                    can_edit=viewer.role in EDITING_ROLES, tile_url=tile_url,
                    markers=[_marker(m, seen) for m in shown], unplaced=unplaced,
                    states=marker_states(session, viewer, shown, seen, utc_now()))


@router.get("/api/v1/plans", response_model=PlansIndex)
def list_plans(viewer: CurrentViewer, context: Context, request: Request) -> PlansIndex:
    """The communities the caller sees, each with its plan's details (if it has one)."""
    def work(session: Session) -> PlansIndex:
        communities = visible_communities(session, viewer)
        plans = {c.id: plan_of(session, c.id) for c in communities}
        return PlansIndex(
            communities=[CommunityPlan(community=c.id, name=c.name, street=c.street_id,
                                       street_name=c.street_name,
                                       plan=None if (p := plans[c.id]) is None
                                       else PlanMeta.of(p)) for c in communities],
            can_edit=viewer.role in EDITING_ROLES, tile_url=_config(request).tile_url)
    return _run(context, work)


@router.get("/api/v1/plans/{community}", response_model=PlanView)
def get_plan(community: str, viewer: CurrentViewer, context: Context,
             request: Request) -> PlanView:
    """The plan, its markers with names and states, and what is not placed yet: one read for
    the page, which then follows the live stream."""
    tile_url = _config(request).tile_url
    return _run(context, lambda session: _plan_view(session, viewer, community, tile_url))


@router.get("/api/v1/plans/{community}/state", response_model=PlanState)
def get_plan_state(community: str, viewer: CurrentViewer, context: Context) -> PlanState:
    """Every marker's state now (overdue, alarm, open, offline, normal), in one read."""
    def work(session: Session) -> PlanState:
        seen_community(session, viewer, community)
        now = utc_now()
        states = marker_states(session, viewer, markers_of(session, community),
                               targets(session, viewer, community), now)
        return PlanState(community=community, at=now, markers=states)
    return _run(context, work)


@router.get(IMAGE_PATH, response_class=Response,
            responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/svg+xml": {}},
                             "description": "the plan image"},
                       304: {"description": "unchanged (If-None-Match)"}})
def get_plan_image(community: str, viewer: CurrentViewer, context: Context,
                   request: Request) -> Response:
    plan = _run(context, lambda session: image_of(session, viewer, community))
    etag = f'"{plan.sha256}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache",
               "Content-Security-Policy": IMAGE_CSP,
               "Content-Disposition": f'inline; filename="plan-{community}.'
                                      f'{_EXTENSIONS.get(plan.content_type, "bin")}"'}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    context.counters.inc("api.plan_images_served")
    return Response(plan.data, media_type=plan.content_type, headers=headers)


@router.put(IMAGE_PATH, response_model=PlanMeta,
            responses={413: {"description": "larger than plans.max_bytes"},
                       415: {"description": "not a PNG, JPEG or SVG (read from the bytes), or "
                                            "an SVG with scripts or outside references"}},
            openapi_extra={"requestBody": {"required": True, "content": {
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "image/svg+xml": {"schema": {"type": "string", "format": "binary"}}}}})
async def put_plan_image(community: str, viewer: CurrentViewer, context: Context,
                         request: Request) -> PlanMeta:
    """Upload (or replace) the community's plan image as the request body; the markers keep
    their places. Control only."""
    data = await request.body()
    actor = Actor(viewer, address_of(request))
    config = _config(request)
    return await run_in_threadpool(_run, context, lambda session: PlanMeta.of(
        save_image(session, actor, community, data, config)), write=True)


@router.delete("/api/v1/plans/{community}", status_code=204, response_class=Response)
def remove_plan(community: str, viewer: CurrentViewer, context: Context,
                request: Request) -> Response:
    """The plan image and every marker on it. Control only."""
    actor = Actor(viewer, address_of(request))
    _run(context, lambda session: delete_plan(session, actor, community), write=True)
    return Response(status_code=204)


@router.put("/api/v1/plans/{community}/markers/{kind}/{target}", response_model=MarkerView)
def put_marker(community: str, kind: Kind, target: str, body: Place, viewer: CurrentViewer,
               context: Context, request: Request) -> Any:
    """Place (or move) a point or gateway of the community on its plan. Control only."""
    actor = Actor(viewer, address_of(request))
    config = _config(request)

    def work(session: Session) -> MarkerView:
        marker = place(session, actor, community, kind, target, body.x, body.y, config)
        return _marker(marker, targets(session, viewer, community))
    return _run(context, work, write=True)


@router.delete("/api/v1/plans/{community}/markers/{kind}/{target}", status_code=204,
               response_class=Response)
def delete_marker(community: str, kind: Kind, target: str, viewer: CurrentViewer,
                  context: Context, request: Request) -> Response:
    """Take a point or gateway off the plan. Control only."""
    actor = Actor(viewer, address_of(request))
    _run(context, lambda session: unplace(session, actor, community, kind, target), write=True)
    return Response(status_code=204)
