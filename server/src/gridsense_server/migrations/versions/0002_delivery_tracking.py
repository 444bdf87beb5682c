"""Sequence ranges per gateway, redelivery counts, backfilled incidents, command results.

Revision ID: 0002
Revises: 0001
Create Date: 2024-07-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(64)
ULID = sa.String(26)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "gateway_sequences",
        sa.Column("gateway", ID, primary_key=True),
        sa.Column("first", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("last", sa.BigInteger, nullable=False),
    )
    op.add_column(
        "gateways",
        sa.Column("seq_redelivered", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    )
    op.add_column(
        "incidents",
        sa.Column("backfilled", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "command_results",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_id", ULID, nullable=False, unique=True),
        sa.Column("command_id", ULID, nullable=False, index=True),
        sa.Column("gateway", ID, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("received_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("command_results")
    # Batch mode: SQLite rebuilds the table to drop a column.
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("backfilled")
    with op.batch_alter_table("gateways") as batch:
        batch.drop_column("seq_redelivered")
    op.drop_table("gateway_sequences")
