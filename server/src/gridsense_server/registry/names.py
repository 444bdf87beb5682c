"""The registry's names beside the ids an API view carries: point, location, grid, micro-grid,
community, street — added to a query by outer joins, so a list costs one query (no lookup per
row) and a row whose point or grid the registry does not know keeps its ids only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from ..db.models import Community, Grid, Point, Street

_grid = aliased(Grid, name="named_grid")
_parent = aliased(Grid, name="named_parent")
_point = aliased(Point, name="named_point")
_COLUMNS = (_point.name, _point.location, _grid.name, _grid.parent_id, _parent.name,
            Community.name, Street.name)
WIDTH = len(_COLUMNS)


@dataclass(frozen=True, slots=True)
class PlaceNames:
    point_name: str | None = None
    location: str | None = None
    grid_name: str | None = None  # the grid (一般网格), also when the row is in its micro-grid
    micro_grid_name: str | None = None  # the micro-grid (微网格), when the row is in one
    community_name: str | None = None
    street_name: str | None = None

    @classmethod
    def of(cls, columns: Sequence[Any]) -> PlaceNames:
        """From the WIDTH columns ``with_place_names`` added, in their order."""
        point, location, grid, parent_id, parent, community, street = columns
        if parent_id is not None:  # a micro-grid: its grid is the parent
            return cls(point, location, parent, grid, community, street)
        return cls(point, location, grid, None, community, street)

    def fields(self) -> dict[str, str | None]:
        return asdict(self)


def with_place_names(query: Select[Any], point_id: ColumnElement[str],
                     grid_id: ColumnElement[str | None]) -> Select[Any]:
    """``query`` with WIDTH more columns: the names of the point and grid it names by id."""
    return (query.add_columns(*_COLUMNS)
            .outerjoin(_point, _point.id == point_id)
            .outerjoin(_grid, _grid.id == grid_id)
            .outerjoin(_parent, _parent.id == _grid.parent_id)
            .outerjoin(Community, Community.id == _grid.community_id)
            .outerjoin(Street, Street.id == Community.street_id))


class PointPlace(BaseModel):
    """A registered point with the registry's names."""

    id: str
    grid: str
    point_name: str | None
    location: str | None
    grid_name: str | None
    micro_grid_name: str | None
    community_name: str | None
    street_name: str | None


def point_places(session: Session, where: ColumnElement[bool],
                 limit: int | None = None) -> list[tuple[str, PointPlace]]:
    """(gateway, point with names) for the points ``where`` selects, by point id: one query."""
    query = with_place_names(select(Point.id, Point.gateway, Point.grid_id).where(where)
                             .order_by(Point.id).limit(limit), Point.id, Point.grid_id)
    return [(row[1], PointPlace(id=row[0], grid=row[2], **PlaceNames.of(row[3:]).fields()))
            for row in session.execute(query)]
