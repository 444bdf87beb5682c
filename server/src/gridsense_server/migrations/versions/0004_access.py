"""Access control: credentials, their sync versions, the access log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.String(64)
ULID = sa.String(26)
HASH = sa.String(16)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "access_sites",
        sa.Column("community_id", ID, primary_key=True),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "access_gateway_versions",
        sa.Column("gateway", ID, primary_key=True),
        sa.Column("community_id", ID, nullable=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("confirmed_at", TS, nullable=False),
    )
    op.create_table(
        "access_credentials",
        sa.Column("id", ID, primary_key=True),
        sa.Column("community_id", ID, nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("card_hash", HASH, nullable=True),
        sa.Column("card_last4", sa.String(4), nullable=True),
        sa.Column("pin_hash", HASH, nullable=True),
        sa.Column("valid_from", TS, nullable=True),
        sa.Column("valid_until", TS, nullable=True),
        sa.Column("doors", sa.JSON, nullable=False),
        sa.Column("buildings", sa.JSON, nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_access_credentials_community_version", "access_credentials",
                    ["community_id", "version"])
    op.create_index("ix_access_credentials_card", "access_credentials",
                    ["community_id", "card_hash"])
    op.create_table(
        "access_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_id", ULID, nullable=False, unique=True),
        sa.Column("gateway", ID, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("point_id", ID, nullable=False),
        sa.Column("grid_id", ID, nullable=True),
        sa.Column("door", ID, nullable=False),
        sa.Column("result", sa.String(32), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("credential_id", ID, nullable=True),
        sa.Column("card_hash", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("offline", sa.Boolean, nullable=False),
        sa.Column("backfill", sa.Boolean, nullable=False),
        sa.Column("credentials_version", sa.BigInteger, nullable=True),
        sa.Column("received_at", TS, nullable=False),
    )
    op.create_index("ix_access_events_door_ts", "access_events", ["door", "ts"])
    op.create_index("ix_access_events_credential_ts", "access_events", ["credential_id", "ts"])
    op.create_index("ix_access_events_ts", "access_events", ["ts"])


def downgrade() -> None:
    op.drop_table("access_events")
    op.drop_table("access_credentials")
    op.drop_table("access_gateway_versions")
    op.drop_table("access_sites")
