"""Read receipts: who opened the incident they were paged about, and by which channel; and
the gateway's threshold and unit on incidents, which pages quote.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", recreate="never") as batch:
        batch.add_column(sa.Column("threshold", sa.Float(), nullable=True))
        batch.add_column(sa.Column("unit", sa.String(16), nullable=True))
    op.create_table(
        "page_reads",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("incident_id", sa.String(26),
                  sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_page_reads_incident_id", "page_reads", ["incident_id"])
    op.create_index("uq_page_reads_key", "page_reads", ["incident_id", "username", "channel"],
                    unique=True)


def downgrade() -> None:
    op.drop_table("page_reads")
    # In place (SQLite >= 3.35 drops a plain column): a batch copy of ``incidents`` would
    # drop the old table, and its ON DELETE CASCADE would empty the steps and deliveries.
    with op.batch_alter_table("incidents", recreate="never") as batch:
        batch.drop_column("unit")
        batch.drop_column("threshold")
