"""The grid tree: a grid's parents and its micro-grids."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.models import Grid, Point


def grid_chain(session: Session, grid_id: str | None) -> list[Grid]:
    """The grid and its parents, nearest first."""
    chain: list[Grid] = []
    while grid_id is not None and len(chain) < 16:
        grid = session.get(Grid, grid_id)
        if grid is None:
            break
        chain.append(grid)
        grid_id = grid.parent_id
    return chain


def with_descendants(session: Session, grids: set[str]) -> frozenset[str]:
    """The grids plus their micro-grids (and deeper levels, should the registry grow them)."""
    result = set(grids)
    frontier = set(grids)
    while frontier:
        children = set(session.scalars(select(Grid.id).where(Grid.parent_id.in_(frontier))))
        frontier = children - result
        result |= frontier
    return frozenset(result)


def gateways_of(session: Session, community: str) -> list[str]:
    """Gateways with at least one point in the community's grids."""
    return list(session.scalars(
        select(Point.gateway).distinct().join(Grid, Grid.id == Point.grid_id)
        .where(Grid.community_id == community).order_by(Point.gateway)))
