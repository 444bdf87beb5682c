"""Who may commission a gateway or save its points: the control room anywhere; an installer for
a gateway in a community (or with points in a grid) it owns a grid of."""

from __future__ import annotations

from fastapi import HTTPException, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.enrollment_models import EnrolledGateway
from ..db.models import Gateway, Grid, Point
from ..registry.viewers import Viewer

MANAGING_ROLES = frozenset({"control", "installer"})


def require_gateway_manager(session: Session, viewer: Viewer, gateway: str) -> None:
    """403 for the wrong role or someone else's gateway; 404 for a gateway nobody created, has
    points of, or heard from."""
    if viewer.role not in MANAGING_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"网关调试须由监控中心或安装人员进行 / gateways are commissioned by "
                            f"role control or installer (you are {viewer.role})")
    enrolled = session.get(EnrolledGateway, gateway)
    grids = set(session.scalars(select(Point.grid_id).where(Point.gateway == gateway)))
    if enrolled is None and not grids and session.get(Gateway, gateway) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"没有网关 {gateway} / no gateway "
                                                       f"{gateway!r}")
    if viewer.grids is None:
        return
    if enrolled is not None:
        grids |= set(session.scalars(select(Grid.id).where(
            Grid.community_id == enrolled.community_id)))
    if not grids & viewer.grids:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"网关 {gateway} 不归您管理 / gateway {gateway!r} is not one of yours")
