"""Incident snapshots: no schema change.

Snapshots are stored as files (gridsense_server/workorders/snapshots.py says why) and found
through the event ids that incident_events already holds, so this revision only keeps the chain
in order.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
