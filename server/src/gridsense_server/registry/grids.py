"""The grid tree: a grid's parents and its micro-grids."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.models import Grid


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
