"""On-site work from the worker's phone: point check-in labels, photos attached to incidents,
and the client action ids that make an offline queue's resends harmless.

On the same ``Base`` as db/models.py; migration 0012 creates them. A label row holds only its
version: the label's secret is derived from the server's secret (a copy of the database
prints no label).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .models import ID_LEN, Base, UtcDateTime

ACTION_ID_LEN = 64
PHOTO_ID_LEN = 32


class PointLabel(Base):
    """The current version of a point's QR label; rotating it voids every printed copy."""

    __tablename__ = "point_labels"

    point_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    rotated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    rotated_by: Mapped[str] = mapped_column(String(ID_LEN))


class IncidentPhoto(Base):
    """A photo a person uploaded for an incident (the file is in the photo store)."""

    __tablename__ = "incident_photos"

    id: Mapped[str] = mapped_column(String(PHOTO_ID_LEN), primary_key=True)
    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    uploaded_by: Mapped[str] = mapped_column(String(ID_LEN))
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    media_type: Mapped[str] = mapped_column(String(16))  # image/jpeg | image/png | image/webp
    bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    location_kept: Mapped[bool] = mapped_column(Boolean)  # EXIF GPS kept (by setting)


class ClientAction(Base):
    """An action a client named with its own id: applied once, its answer replayed after."""

    __tablename__ = "client_actions"

    action_id: Mapped[str] = mapped_column(String(ACTION_ID_LEN), primary_key=True)
    username: Mapped[str] = mapped_column(String(ID_LEN))
    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    result: Mapped[dict[str, Any]] = mapped_column(JSON)

