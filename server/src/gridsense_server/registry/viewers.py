"""Who sees what: a staff member owns grids and, through them, their micro-grids and points.

``control`` sees everything, including incidents from points the registry does not know.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.models import Point, Roster, Staff, StaffGrid
from .grids import with_descendants
from .registry_file import ALL_SEEING_ROLES


@dataclass(frozen=True, slots=True)
class Viewer:
    username: str
    role: str
    grids: frozenset[str] | None  # None: every grid, and incidents with no grid

    def sees_grid(self, grid_id: str | None) -> bool:
        if self.grids is None:
            return True
        return grid_id is not None and grid_id in self.grids


def load_viewer(session: Session, username: str) -> Viewer | None:
    staff = session.get(Staff, username)
    if staff is None:
        return None
    if staff.role in ALL_SEEING_ROLES:
        return Viewer(staff.username, staff.role, None)
    owned = set(session.scalars(select(StaffGrid.grid_id).where(StaffGrid.username == username)))
    # A duty roster pages its members for its grid (night duty): they must see and act on what
    # they are paged for, on and off shift (an accepted page outlives the shift).
    owned |= {grid for grid, names in session.execute(
        select(Roster.grid_id, Roster.usernames).where(Roster.role == staff.role)
    ) if username in (names or ())}
    return Viewer(staff.username, staff.role, with_descendants(session, owned))


def owns_point(session: Session, viewer: Viewer, point_id: str) -> bool:
    point = session.get(Point, point_id)
    return viewer.sees_grid(point.grid_id if point is not None else None)
