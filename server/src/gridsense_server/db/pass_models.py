"""Electronic passes: the deployment's signing keys (public halves; the private halves are
files), each community's site MAC keys and setting, pass records, residents' one-time codes and
phone sessions.

On the same ``Base`` as db/models.py; migration 0017 creates them. Link tokens, sign-in codes
and session ids are stored only as their SHA-256: a copy of the database opens no pass page
and signs no resident in.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .models import ID_LEN, Base, UtcDateTime

PASS_ID_LEN = 16
HASH_HEX_LEN = 64


class PassSigningKey(Base):
    """An Ed25519 key of the deployment (its private half in ``<state>/pass-keys/<id>.key``).
    The newest key not retired signs; every key not retired is pushed to the gateways."""

    __tablename__ = "pass_signing_keys"

    key_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    public: Mapped[str] = mapped_column(String(64))  # hex
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class PassSite(Base):
    """A community's pass settings and its site MAC keys ({key id: hex}, newest signs)."""

    __tablename__ = "pass_sites"

    community_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    compact: Mapped[bool] = mapped_column(Boolean, default=False)  # gates read through OSDP
    site_keys: Mapped[dict[str, str]] = mapped_column(JSON)
    current_site_key: Mapped[int] = mapped_column(Integer)


class AccessPass(Base):
    __tablename__ = "access_passes"
    __table_args__ = (
        Index("ix_access_passes_community_version", "community_id", "version"),
        Index("ix_access_passes_holder", "holder"),
    )

    pass_id: Mapped[str] = mapped_column(String(PASS_ID_LEN), primary_key=True)
    community_id: Mapped[str] = mapped_column(String(ID_LEN))
    kind: Mapped[str] = mapped_column(String(16))  # resident | visitor
    holder: Mapped[str] = mapped_column(String(ID_LEN))  # credential id (resident, or inviter)
    not_before: Mapped[datetime] = mapped_column(UtcDateTime())
    not_after: Mapped[datetime] = mapped_column(UtcDateTime())
    uses: Mapped[int] = mapped_column(Integer, default=0)  # per gateway; 0 = no limit
    doors: Mapped[list[str]] = mapped_column(JSON)
    buildings: Mapped[list[str]] = mapped_column(JSON)
    visitor_name: Mapped[str | None] = mapped_column(String(100))
    visitor_phone: Mapped[str | None] = mapped_column(String(32))
    link_hash: Mapped[str | None] = mapped_column(String(HASH_HEX_LEN), unique=True)
    created_by: Mapped[str] = mapped_column(String(100))  # resident:<id> or staff:<username>
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked_by: Mapped[str | None] = mapped_column(String(100))
    overuse_incident: Mapped[str | None] = mapped_column(String(26))
    version: Mapped[int] = mapped_column(BigInteger)  # the site version of its last change
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ResidentCode(Base):
    """A one-time sign-in code for a resident's phone."""

    __tablename__ = "resident_codes"

    code_hash: Mapped[str] = mapped_column(String(HASH_HEX_LEN), primary_key=True)
    credential_id: Mapped[str] = mapped_column(String(ID_LEN), index=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ResidentSession(Base):
    """A resident's phone, signed in: sees its own pass and invitations, nothing else."""

    __tablename__ = "resident_sessions"

    id_hash: Mapped[str] = mapped_column(String(HASH_HEX_LEN), primary_key=True)
    credential_id: Mapped[str] = mapped_column(String(ID_LEN), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
