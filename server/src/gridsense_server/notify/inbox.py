"""A person's inbox: the incidents they were paged about (any channel, kept in the delivery
log), newest page first with the unread on top. Read is the read receipts' model
(db/page_reads.py): an incident is read once its addressee opened it on any channel, so a page
read in WeCom is not unread on the phone, and reading it here is a receipt too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Subquery, case, func, select
from sqlalchemy.orm import Session

from ..db.models import Notification
from ..db.page_reads import PageRead


@dataclass(frozen=True, slots=True)
class InboxEntry:
    incident_id: str
    paged_at: datetime  # the latest page
    pages: int  # how many messages (steps × channels) reached this person about it
    channels: list[str]
    title: str  # of the latest page
    body: str
    read_at: datetime | None  # first read, on any channel


def _paged(username: str) -> Subquery:
    return (select(Notification.incident_id, func.max(Notification.created_at).label("paged_at"),
                   func.count().label("pages"))
            .where(Notification.recipient == username).group_by(Notification.incident_id)
            .subquery())


def _reads(username: str) -> Subquery:
    return (select(PageRead.incident_id, func.min(PageRead.read_at).label("read_at"))
            .where(PageRead.username == username).group_by(PageRead.incident_id).subquery())


def inbox(session: Session, username: str, *, unread_only: bool = False, limit: int = 50,
          offset: int = 0) -> list[InboxEntry]:
    paged, reads = _paged(username), _reads(username)
    query = (select(paged.c.incident_id, paged.c.paged_at, paged.c.pages, reads.c.read_at)
             .outerjoin(reads, reads.c.incident_id == paged.c.incident_id))
    if unread_only:
        query = query.where(reads.c.read_at.is_(None))
    query = query.order_by(case((reads.c.read_at.is_(None), 0), else_=1),
                           paged.c.paged_at.desc(), paged.c.incident_id.desc())
    rows = session.execute(query.offset(offset).limit(limit)).all()
    if not rows:
        return []
    ids = [row.incident_id for row in rows]
    latest: dict[str, Notification] = {}
    channels: dict[str, set[str]] = {}
    for note in session.scalars(select(Notification).where(
            Notification.recipient == username, Notification.incident_id.in_(ids))
            .order_by(Notification.created_at.desc(), Notification.id.desc())):
        latest.setdefault(note.incident_id, note)
        channels.setdefault(note.incident_id, set()).add(note.channel)
    return [InboxEntry(row.incident_id, row.paged_at, row.pages,
                       sorted(channels[row.incident_id]), latest[row.incident_id].title,
                       latest[row.incident_id].body, row.read_at) for row in rows]


def unread_count(session: Session, username: str) -> int:
    paged, reads = _paged(username), _reads(username)
    return session.scalar(select(func.count()).select_from(paged)
                          .outerjoin(reads, reads.c.incident_id == paged.c.incident_id)
                          .where(reads.c.read_at.is_(None))) or 0
