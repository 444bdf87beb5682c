"""Dead letters: messages acknowledged without being applied, with their reason.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("topic", sa.String(256), nullable=False),
        sa.Column("gateway", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("replay_requested", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_dead_letters_gateway", "dead_letters", ["gateway", "id"])
    op.create_table(
        "dead_letter_stats",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dropped", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dead_letter_stats")
    op.drop_index("ix_dead_letters_gateway", table_name="dead_letters")
    op.drop_table("dead_letters")
