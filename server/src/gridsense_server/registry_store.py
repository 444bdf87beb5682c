"""Upsert a validated registry file into the database.

Idempotent: loading the same file twice changes nothing (a plain ``password:`` is re-hashed
only when it no longer matches the stored hash). Rows absent from the file are kept — history
(incidents) refers to them; removing a point or a staff member is an explicit admin action.
A staff member's grid list is replaced by the file's, since the file is the authority on it.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from .db.models import Base, Community, Grid, Point, Staff, StaffGrid, Street
from .logs import kv
from .passwords import hash_password, verify_password
from .registry import RegistryFile

log = logging.getLogger(__name__)


def _upsert(session: Session, model: type[Base], key: str, values: dict[str, Any]) -> str:
    """Insert or update one row; returns ``created``, ``updated`` or ``unchanged``."""
    row = session.get(model, key)
    if row is None:
        session.add(model(**values))
        return "created"
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return "updated" if changed else "unchanged"


def _password_hash(existing: Staff | None, spec_password: str | None, spec_hash: str | None) -> str:
    if spec_hash is not None:
        return spec_hash
    assert spec_password is not None  # the model guarantees one of the two
    if existing is not None and verify_password(existing.password_hash, spec_password):
        return existing.password_hash
    return hash_password(spec_password)


def apply_registry(factory: sessionmaker[Session], registry: RegistryFile) -> dict[str, int]:
    """Upsert everything in one transaction; returns counts like ``{"point.created": 3}``."""
    stats: Counter[str] = Counter()
    with factory.begin() as session:
        for street in registry.streets:
            stats["street." + _upsert(session, Street, street.id,
                                      {"id": street.id, "name": street.name})] += 1
            for community in street.communities:
                values = {"id": community.id, "street_id": street.id, "name": community.name}
                stats["community." + _upsert(session, Community, community.id, values)] += 1
        session.flush()
        # Parents come first in grid_rows(); flushing each row keeps the self-reference valid
        # whatever order the unit of work would choose.
        for grid_id, community_id, parent_id, name in registry.grid_rows():
            values = {"id": grid_id, "community_id": community_id, "parent_id": parent_id,
                      "name": name}
            stats["grid." + _upsert(session, Grid, grid_id, values)] += 1
            session.flush()
        for point in registry.points:
            values = {"id": point.id, "gateway": point.gateway, "grid_id": point.grid,
                      "name": point.name, "location": point.location}
            stats["point." + _upsert(session, Point, point.id, values)] += 1
        for person in registry.staff:
            existing = session.get(Staff, person.username)
            values = {
                "username": person.username, "name": person.name, "role": person.role,
                "password_hash": _password_hash(existing, person.password, person.password_hash),
            }
            stats["staff." + _upsert(session, Staff, person.username, values)] += 1
            session.flush()
            _replace_staff_grids(session, person.username, set(person.grids))
    result = dict(sorted(stats.items()))
    log.info(kv("registry_loaded", **{k.replace(".", "_"): v for k, v in result.items()}))
    return result


def _replace_staff_grids(session: Session, username: str, grids: set[str]) -> None:
    current = set(session.scalars(select(StaffGrid.grid_id).where(StaffGrid.username == username)))
    if current - grids:
        session.execute(
            delete(StaffGrid).where(
                StaffGrid.username == username, StaffGrid.grid_id.in_(current - grids)
            )
        )
    session.add_all(StaffGrid(username=username, grid_id=g) for g in sorted(grids - current))
