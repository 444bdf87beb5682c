"""In-memory point → grid map for the hot path (every reading needs its grid tag).

Rebuilt from the database at start-up, after a registry load and periodically (another server
process may have loaded a new registry). Lookups are plain dict reads; a reload swaps the
whole dict at once, so readers in any thread see either the old map or the new one.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ..db.models import Point


class PointDirectory:
    def __init__(self, grids: dict[str, str] | None = None) -> None:
        self._grid_of: dict[str, str] = dict(grids or {})

    def grid_of(self, point: str) -> str | None:
        return self._grid_of.get(point)

    def __len__(self) -> int:
        return len(self._grid_of)

    def reload(self, factory: sessionmaker[Session]) -> None:
        with factory() as session:
            rows = session.execute(select(Point.id, Point.grid_id)).all()
        self._grid_of = {point: grid for point, grid in rows}
