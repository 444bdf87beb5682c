"""Which communities, points and gateways a viewer sees on a site plan.

A community is seen when the viewer sees one of its grids; its points are those in the
viewer's grids; its gateways those serving such points (as GET /api/v1/gateways), and for
the control room also gateways created for the community but not yet serving a point.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.enrollment_models import EnrolledGateway
from ..db.models import Community, Grid, Point, Street
from ..registry.names import PointPlace, point_places
from ..registry.viewers import Viewer
from ..workorders.states import Refused


@dataclass(frozen=True, slots=True)
class CommunityNames:
    id: str
    name: str
    street_id: str
    street_name: str


@dataclass(frozen=True, slots=True)
class Targets:
    """What may be placed on (and is shown on) a community's plan for one viewer."""

    points: dict[str, PointPlace]
    gateway_of: dict[str, str]  # point → gateway
    gateways: dict[str, str | None]  # gateway → its name (an enrolled gateway's), if any

    def has(self, kind: str, target: str) -> bool:
        return target in (self.points if kind == "point" else self.gateways)


def visible_communities(session: Session, viewer: Viewer) -> list[CommunityNames]:
    query = (select(Community.id, Community.name, Street.id, Street.name)
             .join(Street, Street.id == Community.street_id).order_by(Community.id))
    if viewer.grids is not None:
        query = query.where(Community.id.in_(
            select(Grid.community_id).where(Grid.id.in_(sorted(viewer.grids)))))
    return [CommunityNames(*row) for row in session.execute(query)]


def seen_community(session: Session, viewer: Viewer, community: str) -> CommunityNames:
    """The community, or Refused 404 alike for one that does not exist and one the viewer
    does not see (no probing for ids)."""
    for found in visible_communities(session, viewer):
        if found.id == community:
            return found
    raise Refused(404, f"没有社区 {community!r} / no community {community!r}")


def targets(session: Session, viewer: Viewer, community: str) -> Targets:
    grids = select(Grid.id).where(Grid.community_id == community)
    where = Point.grid_id.in_(grids)
    if viewer.grids is not None:
        where = where & Point.grid_id.in_(sorted(viewer.grids))
    places = point_places(session, where)
    gateway_of = {place.id: gateway for gateway, place in places}
    names = dict(session.execute(
        select(EnrolledGateway.id, EnrolledGateway.name)
        .where(EnrolledGateway.community_id == community)).all())
    gateways: dict[str, str | None] = {gateway: names.get(gateway)
                                       for gateway in sorted(set(gateway_of.values()))}
    if viewer.grids is None:
        gateways.update({gateway: name for gateway, name in names.items()
                         if gateway not in gateways})
    return Targets({place.id: place for _, place in places}, gateway_of, gateways)
