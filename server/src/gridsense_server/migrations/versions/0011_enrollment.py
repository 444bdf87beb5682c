"""Enrollment: gateways created for installers, their one-time codes (hashed), and revoked
client certificates.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrolled_gateways",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("community_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("location", sa.String(200), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cert_serial", sa.String(40), nullable=True),
    )
    op.create_index("ix_enrolled_gateways_community_id", "enrolled_gateways", ["community_id"])
    op.create_table(
        "enrollment_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("gateway_id", sa.String(64),
                  sa.ForeignKey("enrolled_gateways.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("invalidated_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_enrollment_codes_gateway", "enrollment_codes", ["gateway_id"])
    op.create_table(
        "revoked_certificates",
        sa.Column("serial", sa.String(40), primary_key=True),
        sa.Column("gateway_id", sa.String(64), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_revoked_certificates_gateway_id", "revoked_certificates",
                    ["gateway_id"])


def downgrade() -> None:
    op.drop_table("revoked_certificates")
    op.drop_table("enrollment_codes")
    op.drop_table("enrolled_gateways")
