"""Electronic passes: signing keys (public halves), site settings and MAC keys, pass records,
residents' one-time codes and phone sessions; access events name the pass they were decided on.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "pass_signing_keys",
        sa.Column("key_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("public", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("retired_at", _TS, nullable=True),
    )
    op.create_table(
        "pass_sites",
        sa.Column("community_id", sa.String(64), primary_key=True),
        sa.Column("compact", sa.Boolean(), nullable=False),
        sa.Column("site_keys", sa.JSON(), nullable=False),
        sa.Column("current_site_key", sa.Integer(), nullable=False),
    )
    op.create_table(
        "access_passes",
        sa.Column("pass_id", sa.String(16), primary_key=True),
        sa.Column("community_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("not_before", _TS, nullable=False),
        sa.Column("not_after", _TS, nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("doors", sa.JSON(), nullable=False),
        sa.Column("buildings", sa.JSON(), nullable=False),
        sa.Column("visitor_name", sa.String(100), nullable=True),
        sa.Column("visitor_phone", sa.String(32), nullable=True),
        sa.Column("link_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("revoked_by", sa.String(100), nullable=True),
        sa.Column("overuse_incident", sa.String(26), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_access_passes_community_version", "access_passes",
                    ["community_id", "version"])
    op.create_index("ix_access_passes_holder", "access_passes", ["holder"])
    op.create_table(
        "resident_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("credential_id", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("used_at", _TS, nullable=True),
    )
    op.create_index("ix_resident_codes_credential_id", "resident_codes", ["credential_id"])
    op.create_table(
        "resident_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("credential_id", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
    )
    op.create_index("ix_resident_sessions_credential_id", "resident_sessions",
                    ["credential_id"])
    with op.batch_alter_table("access_events") as batch:
        batch.add_column(sa.Column("pass_id", sa.String(16), nullable=True))
        batch.create_index("ix_access_events_pass_id", ["pass_id"])


def downgrade() -> None:
    with op.batch_alter_table("access_events") as batch:
        batch.drop_index("ix_access_events_pass_id")
        batch.drop_column("pass_id")
    op.drop_table("resident_sessions")
    op.drop_table("resident_codes")
    op.drop_table("access_passes")
    op.drop_table("pass_sites")
    op.drop_table("pass_signing_keys")
