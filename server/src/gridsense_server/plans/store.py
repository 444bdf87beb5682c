"""Site plans in the database: the image of a community and its markers; every change
audited in its own transaction. Changing a plan is the control room's."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, undefer

from gridsense_protocol import utc_now

from ..audit import record
from ..config import PlansConfig
from ..db.plan_models import MARKER_KINDS, PlanMarker, SitePlan
from ..registry.viewers import Viewer
from ..workorders.states import Refused
from .scope import seen_community, targets
from .sniff import ImageRefused, sniff

EDITING_ROLES = frozenset({"control"})


@dataclass(frozen=True, slots=True)
class Actor:
    """Who changes a plan, from where (for the audit log)."""

    viewer: Viewer
    address: str = ""


def require_editor(viewer: Viewer) -> None:
    if viewer.role not in EDITING_ROLES:
        raise Refused(403, f"只有监控中心可以修改平面图 / site plans are changed by role "
                               f"control only (you are {viewer.role})")


def plan_of(session: Session, community: str) -> SitePlan | None:
    """The plan's row without its image bytes (loaded only if read)."""
    return session.get(SitePlan, community)


def image_of(session: Session, viewer: Viewer, community: str) -> SitePlan:
    seen_community(session, viewer, community)
    plan = session.scalars(select(SitePlan).options(undefer(SitePlan.data))
                           .where(SitePlan.community_id == community)).first()
    if plan is None:
        raise Refused(404, "该社区还没有平面图 / this community has no site plan yet")
    return plan


def save_image(session: Session, actor: Actor, community: str, data: bytes,
               config: PlansConfig) -> SitePlan:
    """Store (or replace) the community's plan image; markers keep their places."""
    require_editor(actor.viewer)
    seen_community(session, actor.viewer, community)
    if len(data) > config.max_bytes:
        raise Refused(413, f"平面图超过 {config.max_bytes} 字节的上限 / the plan image is "
                               f"larger than the {config.max_bytes}-byte limit")
    try:
        image = sniff(data, config.max_side_px)
    except ImageRefused as exc:
        raise Refused(415, str(exc)) from None
    digest = hashlib.sha256(data).hexdigest()
    plan = session.get(SitePlan, community)
    if plan is None:
        plan = SitePlan(community_id=community)
        session.add(plan)
    plan.content_type, plan.data, plan.size = image.content_type, data, len(data)
    plan.width, plan.height, plan.sha256 = image.width, image.height, digest
    plan.uploaded_by, plan.uploaded_at = actor.viewer.username, utc_now()
    record(session, actor.viewer.username, "plan.upload", community,
           {"type": image.content_type, "bytes": len(data), "width": image.width,
            "height": image.height, "sha256": digest}, actor.address)
    return plan


def delete_plan(session: Session, actor: Actor, community: str) -> None:
    """The image and every marker on it."""
    require_editor(actor.viewer)
    seen_community(session, actor.viewer, community)
    if session.get(SitePlan, community) is None:
        raise Refused(404, "该社区还没有平面图 / this community has no site plan yet")
    markers = session.execute(delete(PlanMarker).where(PlanMarker.community_id == community))
    session.execute(delete(SitePlan).where(SitePlan.community_id == community))
    record(session, actor.viewer.username, "plan.delete", community,
           {"markers": markers.rowcount}, actor.address)


def markers_of(session: Session, community: str) -> list[PlanMarker]:
    return list(session.scalars(select(PlanMarker).where(PlanMarker.community_id == community)
                                .order_by(PlanMarker.kind, PlanMarker.target_id)))


def place(session: Session, actor: Actor, community: str, kind: str, target: str,
          x: float, y: float, config: PlansConfig) -> PlanMarker:
    """Put a point or gateway of the community at (x, y), fractions of the image's size."""
    require_editor(actor.viewer)
    _check_target(session, actor.viewer, community, kind, target)
    if not (0 <= x <= 1 and 0 <= y <= 1):
        raise Refused(422, "位置须在 0 到 1 之间 / x and y are fractions from 0 to 1")
    marker = session.get(PlanMarker, (community, kind, target))
    before = None if marker is None else (marker.x, marker.y)
    if marker is None:
        placed = session.scalar(select(func.count()).select_from(PlanMarker)
                                .where(PlanMarker.community_id == community)) or 0
        if placed >= config.max_markers:
            raise Refused(409, f"平面图上的标记已达上限 {config.max_markers} / the plan "
                                   f"already holds {config.max_markers} markers (the limit)")
        marker = PlanMarker(community_id=community, kind=kind, target_id=target)
        session.add(marker)
    marker.x, marker.y = x, y
    marker.placed_by, marker.placed_at = actor.viewer.username, utc_now()
    record(session, actor.viewer.username, "plan.place", f"{community}/{kind}/{target}",
           {"x": round(x, 5), "y": round(y, 5),
            "from": None if before is None else [round(v, 5) for v in before]}, actor.address)
    return marker


def unplace(session: Session, actor: Actor, community: str, kind: str, target: str) -> None:
    require_editor(actor.viewer)
    seen_community(session, actor.viewer, community)
    marker = session.get(PlanMarker, (community, kind, target))
    if marker is None:
        raise Refused(404, f"{kind} {target!r} 不在平面图上 / {kind} {target!r} is not "
                               "placed on this plan")
    session.delete(marker)
    record(session, actor.viewer.username, "plan.unplace", f"{community}/{kind}/{target}", "",
           actor.address)


def _check_target(session: Session, viewer: Viewer, community: str, kind: str,
                  target: str) -> None:
    seen_community(session, viewer, community)
    if session.get(SitePlan, community) is None:
        raise Refused(409, "请先上传平面图 / upload the community's plan image first")
    if kind not in MARKER_KINDS:
        raise Refused(422, f"kind must be one of {', '.join(MARKER_KINDS)}")
    if not targets(session, viewer, community).has(kind, target):
        raise Refused(404, f"社区 {community} 没有{'点位' if kind == 'point' else '网关'} "
                               f"{target!r} / community {community!r} has no {kind} {target!r}")
