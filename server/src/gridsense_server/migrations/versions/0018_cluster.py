"""Several server processes on one database: leader leases and live-stream presence.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(120), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_table(
        "live_presence",
        sa.Column("holder", sa.String(120), primary_key=True),
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("streams", sa.Integer(), nullable=False),
        sa.Column("seen_at", TS, nullable=False),
    )
    op.create_index("ix_live_presence_username", "live_presence", ["username"])


def downgrade() -> None:
    op.drop_index("ix_live_presence_username", table_name="live_presence")
    op.drop_table("live_presence")
    op.drop_table("leases")
