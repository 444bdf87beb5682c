"""Upsert a validated registry file into the database, in bulk and idempotently.

Rows absent from the file are kept (history refers to them).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, insert, select, tuple_, update
from sqlalchemy.orm import Session, sessionmaker

from ..audit import SYSTEM, record
from ..db.models import Base, Community, Grid, Point, Roster, Staff, StaffGrid, Street
from ..db.registry_version import bump_registry_version
from ..db.unassigned import forget_registered
from ..logs import kv
from .passwords import hash_password, verify_password
from .registry_file import RegistryFile

log = logging.getLogger(__name__)
_CHUNK = 2000  # rows per statement: well under every driver's bound-parameter limit


def _chunks(rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), _CHUNK):
        yield rows[start:start + _CHUNK]


def _upsert_all(session: Session, model: type[Base], key: str, rows: list[dict[str, Any]],
                stats: Counter[str], kind: str) -> None:
    """Insert new rows, update changed ones; counts ``<kind>.created/updated/unchanged``."""
    # The whole table in one scan (a registry table is the size of the registry; thousands of
    # PostgreSQL "IN (2000 ids)" lookups measured far slower), as plain rows: 50,000 ORM
    # objects in the session would make every later query's autoflush walk them all.
    table = model.__table__
    existing = {row[key]: row for row in session.execute(select(table)).mappings()}
    new, changed = [], []
    for values in rows:
        row = existing.get(values[key])
        if row is None:
            new.append(values)
        elif any(row[name] != value for name, value in values.items()):
            changed.append(values)
    for chunk in _chunks(new):
        session.execute(insert(model), chunk)
    for chunk in _chunks(changed):
        session.execute(update(model), chunk)  # by primary key
    stats[f"{kind}.created"] += len(new)
    stats[f"{kind}.updated"] += len(changed)
    stats[f"{kind}.unchanged"] += len(rows) - len(new) - len(changed)


def _password_hash(existing: str | None, spec_password: str | None, spec_hash: str | None) -> str:
    if spec_hash is not None:
        return spec_hash
    assert spec_password is not None  # the model guarantees one of the two
    if existing is not None and verify_password(existing, spec_password):
        return existing
    return hash_password(spec_password)


def apply_registry(factory: sessionmaker[Session], registry: RegistryFile, *,
                   actor: str = SYSTEM, source: str = "", address: str = "") -> dict[str, int]:
    """Upsert everything in one transaction, audited in it; returns counts like
    ``{"point.created": 3}``."""
    stats: Counter[str] = Counter()
    with factory.begin() as session:
        _upsert_all(session, Street, "id", [{"id": s.id, "name": s.name}
                                            for s in registry.streets], stats, "street")
        _upsert_all(session, Community, "id", [
            {"id": c.id, "street_id": s.id, "name": c.name}
            for s in registry.streets for c in s.communities], stats, "community")
        contacts = registry.contacts_of_grids()
        rows = [{"id": g, "community_id": c, "parent_id": p, "name": n,
                 "contacts": contacts.get(g) or None} for g, c, p, n in registry.grid_rows()]
        # Grids before their micro-grids: the self-reference must be valid at every insert.
        _upsert_all(session, Grid, "id", [r for r in rows if r["parent_id"] is None],
                    stats, "grid")
        _upsert_all(session, Grid, "id", [r for r in rows if r["parent_id"] is not None],
                    stats, "grid")
        _upsert_all(session, Point, "id", [
            {"id": p.id, "gateway": p.gateway, "grid_id": p.grid, "name": p.name,
             "location": p.location} for p in registry.points], stats, "point")
        hashes = dict(session.execute(select(Staff.username, Staff.password_hash).where(
            Staff.username.in_([p.username for p in registry.staff if p.password]))).all())
        _upsert_all(session, Staff, "username", [
            {"username": p.username, "name": p.name, "role": p.role,
             "password_hash": _password_hash(hashes.get(p.username), p.password,
                                             p.password_hash),
             "contacts": dict(p.contacts) or None} for p in registry.staff], stats, "staff")
        _replace_staff_grids(session, {p.username: registry.grids_of(p)
                                       for p in registry.staff})
        _upsert_all(session, Roster, "id", [
            {"id": r.id, "grid_id": r.grid, "role": r.role, "starts": r.starts, "ends": r.ends,
             "usernames": list(r.staff)} for r in registry.rosters], stats, "roster")
        # Running servers poll the version: the new owners of points apply at once.
        stats["unassigned.assigned"] += forget_registered(session)
        bump_registry_version(session)
        result = {k: v for k, v in sorted(stats.items()) if v}
        record(session, actor, "registry.load", source or "registry", result, address)
    log.info(kv("registry_loaded", **{k.replace(".", "_"): v for k, v in result.items()}))
    return result


def upsert_points(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Add or change points (``id, gateway, grid_id, name, location``) in the caller's
    transaction, as a registry load would: running servers pick them up by the version."""
    stats: Counter[str] = Counter()
    _upsert_all(session, Point, "id", rows, stats, "point")
    stats["unassigned.assigned"] += forget_registered(session, [r["id"] for r in rows])
    bump_registry_version(session)
    return {k: v for k, v in sorted(stats.items()) if v}


def _replace_staff_grids(session: Session, owned: dict[str, set[str]]) -> None:
    current: set[tuple[str, str]] = set()
    names = sorted(owned)
    for start in range(0, len(names), _CHUNK):
        current.update(session.execute(select(StaffGrid.username, StaffGrid.grid_id).where(
            StaffGrid.username.in_(names[start:start + _CHUNK]))).all())  # type: ignore[arg-type]
    wanted = {(user, grid) for user, grids in owned.items() for grid in grids}
    gone = sorted(current - wanted)
    for start in range(0, len(gone), _CHUNK):
        session.execute(delete(StaffGrid).where(
            tuple_(StaffGrid.username, StaffGrid.grid_id).in_(gone[start:start + _CHUNK])))
    rows = [{"username": u, "grid_id": g} for u, g in sorted(wanted - current)]
    for chunk in _chunks(rows):
        session.execute(insert(StaffGrid), chunk)
