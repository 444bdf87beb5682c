"""Web trust tables: browser sessions, login throttling, the audit log.

On the same ``Base`` as db/models.py; migration 0008 creates them. A session row holds only
the SHA-256 of the session id the browser keeps (a copy of the database lets nobody sign in).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .models import ID_LEN, Base, UtcDateTime

HASH_HEX = 64
ADDRESS_LEN = 64  # an IPv6 address with a zone fits
THROTTLE_KEY_LEN = 160
AUDIT_ACTION_LEN = 48
AUDIT_TARGET_LEN = 200
AUDIT_DETAIL_LEN = 2000
AUDIT_ACTOR_LEN = 80


class WebSession(Base):
    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_username", "username"),
                      Index("ix_web_sessions_expires_at", "expires_at"))

    id_hash: Mapped[str] = mapped_column(String(HASH_HEX), primary_key=True)
    username: Mapped[str] = mapped_column(String(ID_LEN))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())  # the absolute limit
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    address: Mapped[str] = mapped_column(String(ADDRESS_LEN))
    user_agent: Mapped[str] = mapped_column(String(200))


class ThrottleEntry(Base):
    """Failures of one key (``login:user:alice``, ``login:addr:10.0.0.7``) in its window."""

    __tablename__ = "throttle"
    __table_args__ = (Index("ix_throttle_last_failure_at", "last_failure_at"),)

    key: Mapped[str] = mapped_column(String(THROTTLE_KEY_LEN), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(UtcDateTime())
    blocked_until: Mapped[datetime | None] = mapped_column(UtcDateTime())


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),
                      Index("ix_audit_log_actor", "actor", "id"),
                      Index("ix_audit_log_action", "action", "id"))

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(AUDIT_ACTOR_LEN))
    action: Mapped[str] = mapped_column(String(AUDIT_ACTION_LEN))
    target: Mapped[str] = mapped_column(String(AUDIT_TARGET_LEN))
    detail: Mapped[str] = mapped_column(String(AUDIT_DETAIL_LEN))
    address: Mapped[str] = mapped_column(String(ADDRESS_LEN))
