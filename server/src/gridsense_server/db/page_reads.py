"""Read receipts: a page counts as read when its addressee opens the incident while signed in
(the incident's GET), once per person and channel — never on a bare GET of the signed link,
which chat apps' link previews make. On the same ``Base`` as db/models.py; migration 0010."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from .models import ID_LEN, Base, Notification, UtcDateTime


class PageRead(Base):
    __tablename__ = "page_reads"
    __table_args__ = (
        Index("uq_page_reads_key", "incident_id", "username", "channel", unique=True),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    username: Mapped[str] = mapped_column(String(ID_LEN))
    channel: Mapped[str] = mapped_column(String(32))  # how they came: app, wecom, …
    read_at: Mapped[datetime] = mapped_column(UtcDateTime())


def mark_read(session: Session, incident_id: str, username: str, channel: str,
              now: datetime) -> bool:
    """Record that ``username`` read their page about the incident (first time per channel
    only; a person nobody paged about it records nothing). True when a row was added."""
    paged = session.scalar(select(exists().where(Notification.incident_id == incident_id,
                                                 Notification.recipient == username)))
    if not paged:
        return False
    values = {"incident_id": incident_id, "username": username, "channel": channel[:32],
              "read_at": now}
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(PageRead).values(**values).on_conflict_do_nothing(
        index_elements=["incident_id", "username", "channel"]).returning(PageRead.id)
    # RETURNING, not rowcount: SQLAlchemy on psycopg reports -1 for an insert it skipped.
    return session.execute(statement).first() is not None


def reads_of(session: Session, incident_id: str) -> list[PageRead]:
    return list(session.scalars(select(PageRead).where(PageRead.incident_id == incident_id)
                                .order_by(PageRead.read_at, PageRead.id)))
