"""Commissioning: drills marked on incidents, commissioning runs, installers' draft
configurations.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", recreate="never") as batch:
        batch.add_column(sa.Column("drill", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    op.create_table(
        "commissioning_runs",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("gateway", sa.String(64), nullable=False),
        sa.Column("started_by", sa.String(64), nullable=False),
        sa.Column("installer", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("drill_incident_id", sa.String(26), nullable=True),
        sa.Column("drill_outcome", sa.String(16), nullable=False),
        sa.Column("drill_reached_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("drill_reached_via", sa.String(32), nullable=True),
        sa.Column("drill_acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("drill_closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("points", sa.JSON(), nullable=True),
    )
    op.create_index("ix_commissioning_runs_gateway", "commissioning_runs",
                    ["gateway", "started_at"])
    op.create_index("ix_commissioning_runs_drill_outcome", "commissioning_runs",
                    ["drill_outcome"])
    op.create_table(
        "installation_drafts",
        sa.Column("gateway", sa.String(64), primary_key=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("saved_by", sa.String(64), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("installation_drafts")
    op.drop_table("commissioning_runs")
    # In place: a batch copy of ``incidents`` would cascade-delete its history (see 0010).
    with op.batch_alter_table("incidents", recreate="never") as batch:
        batch.drop_column("drill")
