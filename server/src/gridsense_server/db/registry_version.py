"""A number every registry load bumps, in the load's own transaction: a running server polls
it (one tiny read every few seconds) to pick up a registry another process loaded at once,
instead of waiting for its periodic full reload. Migration 0008 creates the table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer
from sqlalchemy.orm import Mapped, Session, mapped_column

from gridsense_protocol import utc_now

from .models import Base, UtcDateTime


class RegistryVersion(Base):
    """One row (id 1)."""

    __tablename__ = "registry_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    loaded_at: Mapped[datetime] = mapped_column(UtcDateTime)


def bump_registry_version(session: Session) -> int:
    row = session.get(RegistryVersion, 1, with_for_update=True)
    if row is None:
        row = RegistryVersion(id=1, version=0)
        session.add(row)
    row.version += 1
    row.loaded_at = utc_now()
    return row.version


def registry_version(session: Session) -> int:
    row = session.get(RegistryVersion, 1)
    return row.version if row is not None else 0
