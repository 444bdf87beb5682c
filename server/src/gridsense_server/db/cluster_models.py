"""What server processes sharing one database coordinate through: leader leases for the loops
only one of them may run, and who has a live stream open where (so a page to a phone connected
to another process counts as delivered). Migration 0018 creates both tables.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .models import ID_LEN, Base, UtcDateTime

HOLDER_LEN = 120  # host:pid:random


class Lease(Base):
    """One named leadership (``credential-sync``, ``retention``, ...), held until it expires."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(HOLDER_LEN))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LivePresence(Base):
    """A person with live streams open on one process, refreshed while they stay open."""

    __tablename__ = "live_presence"
    __table_args__ = (Index("ix_live_presence_username", "username"),)

    holder: Mapped[str] = mapped_column(String(HOLDER_LEN), primary_key=True)
    username: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    streams: Mapped[int] = mapped_column(Integer)
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
