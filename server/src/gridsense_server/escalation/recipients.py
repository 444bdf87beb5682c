"""Who a policy's target means for an incident: a role relative to the point's grid.

``workers`` / ``leader`` / ``duty_officer`` / ``command_centre`` are the staff of that role who
own the incident's grid or a grid above it (a community duty officer owns the community's
grids); ``control`` is every control-room account. An incident with no grid (its point is not
in the registry) has nobody of the other roles. A duty roster active at the local time replaces
the day owners of its role for its grid and the grids below it.
"""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.models import Roster, Staff, StaffGrid
from ..registry.grids import grid_chain

ROLE_OF_TARGET = {"workers": "worker", "leader": "leader", "duty_officer": "duty_officer",
                  "command_centre": "command_centre", "control": "control"}


def on_duty(roster: Roster, local: time) -> bool:
    starts, ends = time.fromisoformat(roster.starts), time.fromisoformat(roster.ends)
    if starts <= ends:
        return starts <= local < ends
    return local >= starts or local < ends  # wraps midnight (night duty)


def recipients(session: Session, grid_id: str | None, target: str, now: datetime,
               zone: ZoneInfo) -> list[str]:
    role = ROLE_OF_TARGET[target]
    if role == "control":
        return sorted(session.scalars(select(Staff.username).where(Staff.role == "control")))
    if grid_id is None:
        # An incident on a point the registry does not assign (an installer's new sensor)
        # has no grid, so no grid staff: no worker, leader, duty officer or command centre is
        # paged for it. The control room sees it live (the hub sends a grid-less incident to
        # the all-seeing only) and is paged where a policy names ``control``.
        return []
    chain = [grid.id for grid in grid_chain(session, grid_id)]
    if not chain:
        return []
    local = now.astimezone(zone).time()
    rosters = list(session.scalars(
        select(Roster).where(Roster.grid_id.in_(chain), Roster.role == role)
    ))
    for grid in chain:  # the nearest grid with a roster on duty decides
        active = [r for r in rosters if r.grid_id == grid and on_duty(r, local)]
        if active:
            return sorted({name for roster in active for name in roster.usernames})
    return sorted(session.scalars(
        select(StaffGrid.username).join(Staff, Staff.username == StaffGrid.username)
        .where(StaffGrid.grid_id.in_(chain), Staff.role == role).distinct()
    ))
