"""Access control tables: credentials per community, their sync version, the log.

On the same ``Base`` as db/models.py; migration 0004 creates them. Card numbers are never
stored in clear: ``card_hash`` is HMAC-SHA256(community secret, number) truncated to 16 hex
digits — the very value gateways keep and access events carry — and ``card_last4`` is what the
API shows a person managing credentials. PINs are stored only as the same keyed hash.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .models import ID_LEN, ULID_LEN, Base, UtcDateTime

HASH_LEN = 16


class AccessSite(Base):
    """One community's credential set: its hashing secret and its current version."""

    __tablename__ = "access_sites"

    community_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    secret: Mapped[str] = mapped_column(String(64))  # hex; sent to its gateways with a snapshot
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class GatewayCredentials(Base):
    """The credentials version each gateway last confirmed (its ``cmd/result``), kept across
    server restarts so the next change is a delta, not a snapshot to every gateway."""

    __tablename__ = "access_gateway_versions"

    gateway: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    community_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    version: Mapped[int] = mapped_column(BigInteger)
    confirmed_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Credential(Base):
    __tablename__ = "access_credentials"
    __table_args__ = (
        Index("ix_access_credentials_community_version", "community_id", "version"),
        Index("ix_access_credentials_card", "community_id", "card_hash"),
    )

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    community_id: Mapped[str] = mapped_column(String(ID_LEN))
    holder: Mapped[str] = mapped_column(String(200))
    card_hash: Mapped[str | None] = mapped_column(String(HASH_LEN))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    pin_hash: Mapped[str | None] = mapped_column(String(HASH_LEN))
    valid_from: Mapped[datetime | None] = mapped_column(UtcDateTime())
    valid_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    doors: Mapped[list[str]] = mapped_column(JSON)
    buildings: Mapped[list[str]] = mapped_column(JSON)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(BigInteger)  # the site version of its last change
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AccessLogEntry(Base):
    """Every access event a gateway reported, once per event id."""

    __tablename__ = "access_events"
    __table_args__ = (
        Index("ix_access_events_door_ts", "door", "ts"),
        Index("ix_access_events_credential_ts", "credential_id", "ts"),
        Index("ix_access_events_ts", "ts"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(String(ULID_LEN), unique=True)
    gateway: Mapped[str] = mapped_column(String(ID_LEN))
    seq: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[datetime] = mapped_column(UtcDateTime())
    point_id: Mapped[str] = mapped_column(String(ID_LEN))
    grid_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    door: Mapped[str] = mapped_column(String(ID_LEN))
    result: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(16))
    credential_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    card_hash: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(64))
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    backfill: Mapped[bool] = mapped_column(Boolean, default=False)
    credentials_version: Mapped[int | None] = mapped_column(BigInteger)
    pass_id: Mapped[str | None] = mapped_column(String(16), index=True)  # migration 0017
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
