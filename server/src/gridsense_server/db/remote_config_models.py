"""Remote configuration tables: every gateway's config versions (who, when, why), what it was
last told and what it runs, each apply it reported, and the sections of its retained
``config`` message.

On the same ``Base`` as db/models.py; migration 0012 creates them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .models import ID_LEN, ULID_LEN, Base, UtcDateTime

SHA256_HEX = 64


class GatewayConfigVersion(Base):
    """One version of a gateway's desired configuration (never changed once written)."""

    __tablename__ = "gateway_config_versions"
    __table_args__ = (UniqueConstraint("gateway", "version", name="uq_gateway_config_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    gateway: Mapped[str] = mapped_column(String(ID_LEN))
    version: Mapped[int] = mapped_column(BigInteger)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    hash: Mapped[str] = mapped_column(String(SHA256_HEX))
    author: Mapped[str] = mapped_column(String(ID_LEN))
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class GatewayConfigState(Base):
    """Desired against running, per gateway; ``pushed_version`` lags ``desired_version``
    until the server's pusher has published it."""

    __tablename__ = "gateway_config_state"

    gateway: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    desired_version: Mapped[int] = mapped_column(BigInteger)
    desired_hash: Mapped[str] = mapped_column(String(SHA256_HEX))
    pushed_version: Mapped[int] = mapped_column(BigInteger, default=0)
    pushed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    running_version: Mapped[int | None] = mapped_column(BigInteger)
    running_hash: Mapped[str | None] = mapped_column(String(SHA256_HEX))
    last_version: Mapped[int | None] = mapped_column(BigInteger)
    last_state: Mapped[str | None] = mapped_column(String(16))
    last_reason: Mapped[str | None] = mapped_column(String(1000))
    last_result_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class GatewayConfigApply(Base):
    """One outcome a gateway reported: applied, rolled back (with why) or refused."""

    __tablename__ = "gateway_config_applies"
    __table_args__ = (Index("ix_gateway_config_applies_gateway", "gateway", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(ULID_LEN), unique=True)
    gateway: Mapped[str] = mapped_column(String(ID_LEN))
    version: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(SHA256_HEX))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(1000))
    running_hash: Mapped[str | None] = mapped_column(String(SHA256_HEX))
    reported_at: Mapped[datetime] = mapped_column(UtcDateTime())


class RetainedSection(Base):
    """One section of a gateway's retained ``config`` message (``access``,
    ``gateway_config``): the message is rebuilt from all of them whenever one changes, so a
    wing publishing its own never erases another's."""

    __tablename__ = "gateway_retained_sections"

    gateway: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    section: Mapped[str] = mapped_column(String(32), primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
