"""The grid tree for the control room: street → community → grid → micro-grid, each node with
its open and overdue incidents (its own and everything below it), scoped to what the caller
sees: a branch appears only where the caller sees a grid in it."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import case, func, select, true
from sqlalchemy.orm import Session

from gridsense_protocol import utc_now

from ..db.models import FINAL_STATES, Community, Grid, Incident, Point, Street
from ..registry.names import PointPlace, point_places
from ..registry.viewers import Viewer
from .deps import Context, CurrentViewer
from .incident_routes import overdue_clause

router = APIRouter()


class Counts(BaseModel):
    open: int = 0  # not closed and not judged invalid
    overdue: int = 0  # waiting past the accept deadline, or handled past the resolve one


class TreeNode(Counts):
    id: str
    name: str
    children: list[TreeNode] = []  # street → communities → grids → micro-grids


class RegistryTree(BaseModel):
    streets: list[TreeNode]
    unassigned: Counts | None  # incidents from points the registry does not know (control)


def _counts(session: Session, viewer: Viewer) -> dict[str | None, Counts]:
    overdue = func.sum(case((overdue_clause(utc_now()), 1), else_=0))
    query = (select(Incident.grid_id, func.count(), overdue)
             .where(Incident.state.not_in(FINAL_STATES), Incident.drill.is_(False))
             .group_by(Incident.grid_id))
    if viewer.grids is not None:
        query = query.where(Incident.grid_id.in_(sorted(viewer.grids)))
    return {grid: Counts(open=n, overdue=int(late or 0))
            for grid, n, late in session.execute(query)}


def _add(node: TreeNode, counts: Counts) -> None:
    node.open += counts.open
    node.overdue += counts.overdue


def build_tree(session: Session, viewer: Viewer) -> RegistryTree:
    counts = _counts(session, viewer)
    grids = list(session.scalars(select(Grid).order_by(Grid.id)))
    children: dict[str | None, list[Grid]] = defaultdict(list)
    for grid in grids:
        children[grid.parent_id].append(grid)

    def grid_node(grid: Grid, depth: int = 0) -> TreeNode | None:
        below = [n for c in (children[grid.id] if depth < 8 else [])
                 if (n := grid_node(c, depth + 1)) is not None]
        if not below and not viewer.sees_grid(grid.id):
            return None
        node = TreeNode(id=grid.id, name=grid.name, children=below)
        _add(node, counts.get(grid.id, Counts()))
        for child in below:
            _add(node, child)
        return node

    by_community: dict[str, list[TreeNode]] = defaultdict(list)
    for grid in children[None]:
        if (node := grid_node(grid)) is not None:
            by_community[grid.community_id].append(node)
    by_street: dict[str, list[TreeNode]] = defaultdict(list)
    for community in session.scalars(select(Community).order_by(Community.id)):
        if by_community[community.id]:
            by_street[community.street_id].append(
                _parent(community.id, community.name, by_community[community.id]))
    streets = [_parent(street.id, street.name, by_street[street.id])
               for street in session.scalars(select(Street).order_by(Street.id))
               if by_street[street.id]]
    unassigned = counts.get(None, Counts()) if viewer.grids is None else None
    return RegistryTree(streets=streets, unassigned=unassigned)


def _parent(id_: str, name: str, children: list[TreeNode]) -> TreeNode:
    node = TreeNode(id=id_, name=name, children=children)
    for child in children:
        _add(node, child)
    return node


@router.get("/api/v1/registry/tree", response_model=RegistryTree, tags=["registry"])
def registry_tree(viewer: CurrentViewer, context: Context) -> Any:
    """The grid tree with open and overdue counts, for the caller's grids only."""
    with context.factory() as session:
        return build_tree(session, viewer)


@router.get("/api/v1/registry/points", response_model=list[PointPlace], tags=["registry"])
def registry_points(viewer: CurrentViewer, context: Context,
                    limit: Annotated[int, Query(ge=1, le=20_000)] = 5000) -> Any:
    """The caller's points with their names, by id: how the page names what live pushes
    (which carry ids only) are about."""
    where = true() if viewer.grids is None else Point.grid_id.in_(sorted(viewer.grids))
    with context.factory() as session:
        return [place for _, place in point_places(session, where, limit)]
