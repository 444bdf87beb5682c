"""On-site work from the phone: point check-in labels (versions), incident photos, and client
action ids (an offline queue's resend is applied once).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "point_labels",
        sa.Column("point_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "incident_photos",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("incident_id", sa.String(26),
                  sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("uploaded_by", sa.String(64), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("media_type", sa.String(16), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("location_kept", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_incident_photos_incident_id", "incident_photos", ["incident_id"])
    op.create_table(
        "client_actions",
        sa.Column("action_id", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("incident_id", sa.String(26),
                  sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
    )
    op.create_index("ix_client_actions_incident_id", "client_actions", ["incident_id"])


def downgrade() -> None:
    op.drop_table("client_actions")
    op.drop_table("incident_photos")
    op.drop_table("point_labels")
