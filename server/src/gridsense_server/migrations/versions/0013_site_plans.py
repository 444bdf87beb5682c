"""Site plans: a plan image per community and the places of its points and gateways on it.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_plans",
        sa.Column("community_id", sa.String(64),
                  sa.ForeignKey("communities.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("uploaded_by", sa.String(64), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "plan_markers",
        sa.Column("community_id", sa.String(64),
                  sa.ForeignKey("site_plans.community_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("target_id", sa.String(64), primary_key=True),
        sa.Column("x", sa.Float(), nullable=False),
        sa.Column("y", sa.Float(), nullable=False),
        sa.Column("placed_by", sa.String(64), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("x >= 0 AND x <= 1 AND y >= 0 AND y <= 1",
                           name="ck_plan_markers_xy"),
        sa.CheckConstraint("kind IN ('point', 'gateway')", name="ck_plan_markers_kind"),
    )


def downgrade() -> None:
    op.drop_table("plan_markers")
    op.drop_table("site_plans")
