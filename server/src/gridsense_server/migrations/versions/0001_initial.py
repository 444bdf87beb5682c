"""Registry, incidents and gateways.

Revision ID: 0001
Revises:
Create Date: 2024-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(64)
ULID = sa.String(26)
TS = sa.DateTime(timezone=True)
OPEN = sa.text("state NOT IN ('closed', 'invalid')")


def upgrade() -> None:
    op.create_table(
        "streets",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
    )
    op.create_table(
        "communities",
        sa.Column("id", ID, primary_key=True),
        sa.Column("street_id", ID, sa.ForeignKey("streets.id"), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
    )
    op.create_table(
        "grids",
        sa.Column("id", ID, primary_key=True),
        sa.Column("community_id", ID, sa.ForeignKey("communities.id"), nullable=False, index=True),
        sa.Column("parent_id", ID, sa.ForeignKey("grids.id"), nullable=True, index=True),
        sa.Column("name", sa.String(200), nullable=False),
    )
    op.create_table(
        "points",
        sa.Column("id", ID, primary_key=True),
        sa.Column("gateway", ID, nullable=False, index=True),
        sa.Column("grid_id", ID, sa.ForeignKey("grids.id"), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("location", sa.String(200), nullable=True),
    )
    op.create_table(
        "staff",
        sa.Column("username", ID, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
    )
    op.create_table(
        "staff_grids",
        sa.Column(
            "username", ID, sa.ForeignKey("staff.username", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("grid_id", ID, sa.ForeignKey("grids.id"), primary_key=True, index=True),
    )
    op.create_table(
        "incidents",
        sa.Column("id", ULID, primary_key=True),
        sa.Column("point_id", ID, nullable=False),
        sa.Column("grid_id", ID, nullable=True),
        sa.Column("gateway", ID, nullable=False),
        sa.Column("type", sa.String(48), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("alarm", sa.String(16), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("first_event_id", ULID, nullable=False),
        sa.Column("state_changed_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
    )
    op.create_index(
        "uq_incidents_open_point_type", "incidents", ["point_id", "type"], unique=True,
        sqlite_where=OPEN, postgresql_where=OPEN,
    )
    op.create_index("ix_incidents_grid_state", "incidents", ["grid_id", "state"])
    op.create_index("ix_incidents_last_seen_at", "incidents", ["last_seen_at"])
    op.create_table(
        "incident_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
            autoincrement=True,
        ),
        sa.Column(
            "incident_id", ULID, sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            nullable=False, index=True,
        ),
        sa.Column("event_id", ULID, nullable=False, unique=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("received_at", TS, nullable=False),
    )
    op.create_table(
        "gateways",
        sa.Column("id", ID, primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("last_seen_at", TS, nullable=True),
        sa.Column("state_changed_at", TS, nullable=True),
        sa.Column("last_health", sa.JSON, nullable=True),
        sa.Column("last_status_seq", sa.BigInteger, nullable=True),
    )


def downgrade() -> None:
    for table in (
        "gateways", "incident_events", "incidents", "staff_grids", "staff", "points", "grids",
        "communities", "streets",
    ):
        op.drop_table(table)
