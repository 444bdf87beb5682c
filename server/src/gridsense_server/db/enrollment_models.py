"""Enrollment tables: gateways created for an installer, their one-time codes, and the client
certificates revoked with them.

On the same ``Base`` as db/models.py; migration 0011 creates them. A code row holds only the
SHA-256 of the code (a copy of the database enrolls nobody).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .models import ID_LEN, Base, UtcDateTime
from .web_models import HASH_HEX

SERIAL_HEX = 40  # RFC 5280: a serial number is at most 20 octets


class EnrolledGateway(Base):
    """A gateway the control room or an installer created; ``state`` is pending (a code is
    out), enrolled (credentials issued) or revoked."""

    __tablename__ = "enrolled_gateways"

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    community_id: Mapped[str] = mapped_column(String(ID_LEN), index=True)
    name: Mapped[str] = mapped_column(String(200))
    location: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(ID_LEN))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    enrolled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    cert_serial: Mapped[str | None] = mapped_column(String(SERIAL_HEX))


class EnrollmentCode(Base):
    __tablename__ = "enrollment_codes"
    __table_args__ = (Index("ix_enrollment_codes_gateway", "gateway_id"),)

    code_hash: Mapped[str] = mapped_column(String(HASH_HEX), primary_key=True)
    gateway_id: Mapped[str] = mapped_column(
        ForeignKey("enrolled_gateways.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    invalidated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class RevokedCertificate(Base):
    __tablename__ = "revoked_certificates"

    serial: Mapped[str] = mapped_column(String(SERIAL_HEX), primary_key=True)
    gateway_id: Mapped[str] = mapped_column(String(ID_LEN), index=True)
    revoked_at: Mapped[datetime] = mapped_column(UtcDateTime())
