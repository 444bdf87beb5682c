"""Points a gateway reports that the registry does not know (yet): an installer's new sensor.

One row per (gateway, point) with when it was first and last heard of and how often. Ingest
keeps the list in memory (it is capped per gateway there) and writes what changed every few
seconds; a registry load drops the points it assigns (``forget_registered``). On the same
``Base`` as db/models.py; migration 0008 creates the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, String, case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from .models import ID_LEN, Base, Point, UtcDateTime


class UnassignedPoint(Base):
    __tablename__ = "unassigned_points"

    gateway: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    point: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime)  # device times
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    count: Mapped[int] = mapped_column(BigInteger)  # readings, incidents and access events


@dataclass(slots=True)
class Sighting:
    """What ingest heard of one unassigned point since its last write."""

    first_seen: datetime
    last_seen: datetime
    count: int = 0


Key = tuple[str, str]  # (gateway, point)
_CHUNK = 1000  # rows per statement: well under SQLite's and PostgreSQL's parameter limits


class UnassignedStore:
    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    def add(self, sightings: dict[Key, Sighting]) -> int:
        """Fold ``sightings`` in (one statement, safe against another process doing the
        same); points the registry assigned meanwhile are not kept. Returns rows dropped."""
        if not sightings:
            return 0
        with self.factory.begin() as session:
            insert = (postgresql.insert if session.get_bind().dialect.name == "postgresql"
                      else sqlite.insert)
            rows = [{"gateway": g, "point": p, "first_seen": s.first_seen,
                     "last_seen": s.last_seen, "count": s.count}
                    for (g, p), s in sightings.items()]
            table = UnassignedPoint
            for start in range(0, len(rows), _CHUNK):
                statement = insert(table).values(rows[start:start + _CHUNK])
                new = statement.excluded
                session.execute(statement.on_conflict_do_update(
                    index_elements=[table.gateway, table.point],
                    set_={"count": table.count + new.count,
                          "first_seen": case((new.first_seen < table.first_seen,
                                              new.first_seen), else_=table.first_seen),
                          "last_seen": case((new.last_seen > table.last_seen, new.last_seen),
                                            else_=table.last_seen)}))
            points = sorted({p for _, p in sightings})
            return sum(forget_registered(session, points[start:start + _CHUNK])
                       for start in range(0, len(points), _CHUNK))

    def all(self, *, gateway: str | None = None) -> list[UnassignedPoint]:
        """Gateway by gateway, most recently heard of first."""
        query = select(UnassignedPoint).order_by(UnassignedPoint.gateway,
                                                 UnassignedPoint.last_seen.desc(),
                                                 UnassignedPoint.point)
        if gateway is not None:
            query = query.where(UnassignedPoint.gateway == gateway)
        with self.factory() as session:
            return list(session.scalars(query))

    def keys(self) -> set[Key]:
        with self.factory() as session:
            return {(g, p) for g, p in session.execute(
                select(UnassignedPoint.gateway, UnassignedPoint.point))}


def forget_registered(session: Session, points: list[str] | None = None) -> int:
    """Drop the rows of points the registry now assigns (all, or only these); in the caller's
    transaction, so a registry load and the list never disagree."""
    registered: Any = select(Point.id)
    if points is not None:
        registered = registered.where(Point.id.in_(points))
    return int(session.execute(delete(UnassignedPoint).where(
        UnassignedPoint.point.in_(registered))).rowcount or 0)
