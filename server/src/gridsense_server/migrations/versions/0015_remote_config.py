"""Remote configuration: config versions per gateway, desired against running, the applies
gateways reported, and the sections of each gateway's retained config message.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "gateway_config_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("gateway", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("gateway", "version", name="uq_gateway_config_version"),
    )
    op.create_table(
        "gateway_config_state",
        sa.Column("gateway", sa.String(64), primary_key=True),
        sa.Column("desired_version", sa.BigInteger(), nullable=False),
        sa.Column("desired_hash", sa.String(64), nullable=False),
        sa.Column("pushed_version", sa.BigInteger(), nullable=False),
        sa.Column("pushed_at", TS, nullable=True),
        sa.Column("running_version", sa.BigInteger(), nullable=True),
        sa.Column("running_hash", sa.String(64), nullable=True),
        sa.Column("last_version", sa.BigInteger(), nullable=True),
        sa.Column("last_state", sa.String(16), nullable=True),
        sa.Column("last_reason", sa.String(1000), nullable=True),
        sa.Column("last_result_at", TS, nullable=True),
    )
    op.create_table(
        "gateway_config_applies",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(26), nullable=False, unique=True),
        sa.Column("gateway", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=True),
        sa.Column("running_hash", sa.String(64), nullable=True),
        sa.Column("reported_at", TS, nullable=False),
    )
    op.create_index("ix_gateway_config_applies_gateway", "gateway_config_applies",
                    ["gateway", "id"])
    op.create_table(
        "gateway_retained_sections",
        sa.Column("gateway", sa.String(64), primary_key=True),
        sa.Column("section", sa.String(32), primary_key=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gateway_retained_sections")
    op.drop_table("gateway_config_applies")
    op.drop_table("gateway_config_state")
    op.drop_table("gateway_config_versions")
