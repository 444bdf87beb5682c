"""Dead letters: messages acknowledged without being applied, set aside with their reason.

Capped: beyond ``max_rows`` the oldest go, counted in ``dead_letter_stats``. On the same
``Base`` as db/models.py; migration 0007 creates both tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Index,
    Integer,
    LargeBinary,
    String,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from gridsense_protocol import MAX_PAYLOAD_BYTES, MAX_SNAPSHOT_BYTES, Kind, utc_now

from .models import ID_LEN, Base, UtcDateTime

# Kept whole when it could be replayed: up to what decode accepts on its topic. A larger one
# never will be, so its head is enough to see what it was (and bounds what a flood costs).
HEAD_BYTES = 4096
TOPIC_LEN = 256
REASON_LEN = 500


class DeadLetter(Base):
    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_gateway", "gateway", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    topic: Mapped[str] = mapped_column(String(TOPIC_LEN))
    gateway: Mapped[str | None] = mapped_column(String(ID_LEN))
    reason: Mapped[str] = mapped_column(String(REASON_LEN))
    size: Mapped[int] = mapped_column(Integer)  # the payload's size as received
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # cut to MAX_PAYLOAD_BYTES
    # Marked by the CLI or the API; the running server takes marked ones back into ingest.
    replay_requested: Mapped[bool] = mapped_column(Boolean, default=False)


class DeadLetterStats(Base):
    """One row: how many dead letters the cap dropped."""

    __tablename__ = "dead_letter_stats"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dropped: Mapped[int] = mapped_column(BigInteger, default=0)


@dataclass(frozen=True, slots=True)
class NewDeadLetter:
    topic: str
    gateway: str | None
    reason: str
    payload: bytes
    received_at: datetime


class DeadLetterStore:
    def __init__(self, factory: sessionmaker[Session], max_rows: int) -> None:
        self.factory = factory
        self.max_rows = max_rows

    def add(self, letters: list[NewDeadLetter]) -> int:
        """Store ``letters`` in one transaction; returns how many old ones the cap dropped."""
        with self.factory.begin() as session:
            session.add_all(
                DeadLetter(received_at=d.received_at, topic=d.topic[:TOPIC_LEN],
                           gateway=d.gateway, reason=d.reason[:REASON_LEN], size=len(d.payload),
                           payload=_kept(d.topic, d.payload), replay_requested=False)
                for d in letters
            )
            session.flush()
            return _enforce_cap(session, self.max_rows)

    def recent(self, *, gateway: str | None = None, limit: int = 100,
             before_id: int | None = None) -> list[DeadLetter]:
        """Newest first."""
        query = select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit)
        if gateway is not None:
            query = query.where(DeadLetter.gateway == gateway)
        if before_id is not None:
            query = query.where(DeadLetter.id < before_id)
        with self.factory() as session:
            return list(session.scalars(query))

    def get(self, letter_id: int) -> DeadLetter | None:
        with self.factory() as session:
            return session.get(DeadLetter, letter_id)

    def remove(self, letter_ids: list[int]) -> int:
        with self.factory.begin() as session:
            return _delete(session, letter_ids)

    def purge(self, *, gateway: str | None = None) -> int:
        with self.factory.begin() as session:
            query = delete(DeadLetter)
            if gateway is not None:
                query = query.where(DeadLetter.gateway == gateway)
            return int(session.execute(query).rowcount or 0)

    def request_replay(self, letter_ids: list[int] | None = None, *,
                       gateway: str | None = None) -> int:
        """Mark dead letters for replay (``letter_ids`` None: all, or all of ``gateway``)."""
        query = update(DeadLetter).values(replay_requested=True)
        if letter_ids is not None:
            query = query.where(DeadLetter.id.in_(letter_ids))
        if gateway is not None:
            query = query.where(DeadLetter.gateway == gateway)
        with self.factory.begin() as session:
            return int(session.execute(query).rowcount or 0)

    def marked_for_replay(self, limit: int, skip: frozenset[int] = frozenset()
                          ) -> list[DeadLetter]:
        """Up to ``limit`` dead letters marked for replay, oldest first, other than ``skip``
        (those being replayed). They stay stored until their replay settles (``remove``)."""
        query = select(DeadLetter).where(DeadLetter.replay_requested)
        if skip:
            query = query.where(DeadLetter.id.not_in(sorted(skip)))
        with self.factory() as session:
            rows = list(session.scalars(query.order_by(DeadLetter.id).limit(limit)))
            for row in rows:
                session.expunge(row)
            return rows

    def count(self) -> int:
        with self.factory() as session:
            return int(session.scalar(select(func.count()).select_from(DeadLetter)) or 0)

    def dropped(self) -> int:
        with self.factory() as session:
            stats = session.get(DeadLetterStats, 1)
            return stats.dropped if stats is not None else 0


def _kept(topic: str, payload: bytes) -> bytes:
    limit = MAX_SNAPSHOT_BYTES if f"/{Kind.SNAPSHOT.value}/" in topic else MAX_PAYLOAD_BYTES
    return payload if len(payload) <= limit else payload[:HEAD_BYTES]


def _delete(session: Session, letter_ids: list[int]) -> int:
    if not letter_ids:
        return 0
    return int(session.execute(delete(DeadLetter).where(DeadLetter.id.in_(letter_ids)))
               .rowcount or 0)


def _enforce_cap(session: Session, max_rows: int) -> int:
    total = int(session.scalar(select(func.count()).select_from(DeadLetter)) or 0)
    excess = total - max_rows
    if excess <= 0:
        return 0
    # The newest one to drop, by id (ids grow): everything up to it goes.
    cut = session.scalar(select(DeadLetter.id).order_by(DeadLetter.id).offset(excess - 1)
                         .limit(1))
    dropped = int(session.execute(delete(DeadLetter).where(DeadLetter.id <= cut)).rowcount or 0)
    stats = session.get(DeadLetterStats, 1)
    if stats is None:
        session.add(DeadLetterStats(id=1, dropped=dropped))
    else:
        stats.dropped += dropped
    return dropped


def new_dead_letter(topic: str, gateway: str | None, reason: str,
                    payload: bytes) -> NewDeadLetter:
    return NewDeadLetter(topic, gateway, reason, payload, utc_now())
