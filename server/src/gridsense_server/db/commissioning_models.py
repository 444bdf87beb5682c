"""Commissioning tables: a run per check of a gateway (its points' first readings and the drill
page to the installer), and the installer's draft configuration per gateway.

On the same ``Base`` as db/models.py; migration 0012 creates them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .models import ID_LEN, ULID_LEN, Base, UtcDateTime


class CommissioningRun(Base):
    """One commissioning check. ``drill_outcome``: pending (the page is on its way), reached
    (a channel delivered it), acknowledged (the installer opened it), unreached (nothing
    delivered it in time). ``verdict`` and ``points`` are the last computed report."""

    __tablename__ = "commissioning_runs"
    __table_args__ = (Index("ix_commissioning_runs_gateway", "gateway", "started_at"),)

    id: Mapped[str] = mapped_column(String(ULID_LEN), primary_key=True)
    gateway: Mapped[str] = mapped_column(String(ID_LEN))
    started_by: Mapped[str] = mapped_column(String(ID_LEN))
    installer: Mapped[str] = mapped_column(String(ID_LEN))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    drill_incident_id: Mapped[str | None] = mapped_column(String(ULID_LEN))
    drill_outcome: Mapped[str] = mapped_column(String(16), index=True)
    drill_reached_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    drill_reached_via: Mapped[str | None] = mapped_column(String(32))
    drill_acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    drill_closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    verdict: Mapped[str] = mapped_column(String(16))  # pending | green | red
    checked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    points: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)


class InstallationDraft(Base):
    """A gateway's configuration as the installer last saved it: the discovered devices, each
    assigned to a point, and the thresholds chosen for them."""

    __tablename__ = "installation_drafts"

    gateway: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    saved_by: Mapped[str] = mapped_column(String(ID_LEN))
    saved_at: Mapped[datetime] = mapped_column(UtcDateTime())
