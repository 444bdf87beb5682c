"""Incident lifecycle: history, SLA clocks, escalation steps, deliveries, silences.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.String(64)
ULID = sa.String(26)
TS = sa.DateTime(timezone=True)
SERIAL = sa.BigInteger().with_variant(sa.Integer, "sqlite")
INCIDENT_COLUMNS = ("level", "accept_due_at", "resolve_due_at", "accepted_by", "accepted_at",
                    "paused_at", "previous_id", "suppressed", "policy")


def upgrade() -> None:
    op.add_column("grids", sa.Column("contacts", sa.JSON, nullable=True))
    op.add_column("staff", sa.Column("contacts", sa.JSON, nullable=True))
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("level", sa.String(16), nullable=False,
                                   server_default="grid"))
        batch.add_column(sa.Column("accept_due_at", TS, nullable=True))
        batch.add_column(sa.Column("resolve_due_at", TS, nullable=True))
        batch.add_column(sa.Column("accepted_by", ID, nullable=True))
        batch.add_column(sa.Column("accepted_at", TS, nullable=True))
        batch.add_column(sa.Column("paused_at", TS, nullable=True))
        batch.add_column(sa.Column("previous_id", ULID, nullable=True))
        batch.add_column(sa.Column("suppressed", sa.String(64), nullable=True))
        batch.add_column(sa.Column("policy", sa.String(64), nullable=True))
    op.create_index("ix_incidents_point_type", "incidents", ["point_id", "type"])
    op.create_index("ix_incidents_accept_due_at", "incidents", ["accept_due_at"])
    op.create_index("ix_incidents_resolve_due_at", "incidents", ["resolve_due_at"])
    op.create_table(
        "incident_transitions",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("incident_id", ULID, sa.ForeignKey("incidents.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("actor", ID, nullable=False),
        sa.Column("role", sa.String(32), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("photos", sa.JSON, nullable=True),
    )
    op.create_table(
        "escalation_steps",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("incident_id", ULID, sa.ForeignKey("incidents.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("loop", sa.Integer, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("done_at", TS, nullable=True),
    )
    op.create_index("uq_escalation_steps_key", "escalation_steps",
                    ["incident_id", "step", "loop"], unique=True)
    op.create_index("ix_escalation_steps_status_due", "escalation_steps", ["status", "due_at"])
    op.create_table(
        "deliveries",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("incident_id", ULID, sa.ForeignKey("incidents.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("loop", sa.Integer, nullable=False),
        sa.Column("recipient", sa.String(72), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("target", sa.Text, nullable=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("uq_deliveries_key", "deliveries",
                    ["incident_id", "step", "loop", "recipient", "channel"], unique=True)
    op.create_index("ix_deliveries_status_next", "deliveries", ["status", "next_attempt_at"])
    op.create_table(
        "rosters",
        sa.Column("id", ID, primary_key=True),
        sa.Column("grid_id", ID, sa.ForeignKey("grids.id"), nullable=False, index=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("starts", sa.String(5), nullable=False),
        sa.Column("ends", sa.String(5), nullable=False),
        sa.Column("usernames", sa.JSON, nullable=False),
    )
    op.create_table(
        "silences",
        sa.Column("id", ULID, primary_key=True),
        sa.Column("gateway", ID, nullable=True),
        sa.Column("point_id", ID, nullable=True),
        sa.Column("grid_id", ID, nullable=True),
        sa.Column("type", sa.String(48), nullable=True),
        sa.Column("ends_at", TS, nullable=False, index=True),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("silences", "rosters", "deliveries", "escalation_steps",
                  "incident_transitions"):
        op.drop_table(table)
    op.drop_index("ix_incidents_resolve_due_at", "incidents")
    op.drop_index("ix_incidents_accept_due_at", "incidents")
    op.drop_index("ix_incidents_point_type", "incidents")
    # Batch mode: SQLite rebuilds the table to drop a column.
    with op.batch_alter_table("incidents") as batch:
        for column in INCIDENT_COLUMNS:
            batch.drop_column(column)
    with op.batch_alter_table("staff") as batch:
        batch.drop_column("contacts")
    with op.batch_alter_table("grids") as batch:
        batch.drop_column("contacts")
