"""Escalation steps that page are named ``page.<index>@<ms>`` (they were ``a.<index>@<ms>``).

The name is part of the unique keys of escalation_steps and deliveries, so both are rewritten.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("escalation_steps", "deliveries")


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"UPDATE {table} SET step = 'page' || substr(step, 2) WHERE step LIKE 'a.%'")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"UPDATE {table} SET step = 'a' || substr(step, 5) WHERE step LIKE 'page.%'")
