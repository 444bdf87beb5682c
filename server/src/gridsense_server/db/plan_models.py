"""Site plans: one plan image per community (a floor plan or a drawing of the estate) and the
places of its points and gateways on it.

On the same ``Base`` as db/models.py; migration 0012 creates them. The image lives in the
database (one per community, capped in size by ``plans.max_bytes``) so every server process
sharing the database serves the same picture. Places are fractions of the image's width and
height (0..1), so the picture can be shown at any size and replaced by a redrawn one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Float, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from .models import ID_LEN, Base, UtcDateTime

MARKER_KINDS = ("point", "gateway")
CONTENT_TYPE_LEN = 32
SHA256_HEX = 64


class SitePlan(Base):
    __tablename__ = "site_plans"

    community_id: Mapped[str] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE"), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(CONTENT_TYPE_LEN))
    # Loaded only when the picture itself is served: listings read the columns around it.
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    size: Mapped[int] = mapped_column(Integer)  # bytes
    width: Mapped[int] = mapped_column(Integer)  # pixels (an SVG's user units)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(SHA256_HEX))  # also the HTTP ETag
    uploaded_by: Mapped[str] = mapped_column(String(ID_LEN))
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime())


class PlanMarker(Base):
    """Where a point or a gateway sits on its community's plan."""

    __tablename__ = "plan_markers"
    __table_args__ = (
        CheckConstraint("x >= 0 AND x <= 1 AND y >= 0 AND y <= 1", name="ck_plan_markers_xy"),
        CheckConstraint("kind IN ('point', 'gateway')", name="ck_plan_markers_kind"),
    )

    community_id: Mapped[str] = mapped_column(
        ForeignKey("site_plans.community_id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    target_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    placed_by: Mapped[str] = mapped_column(String(ID_LEN))
    placed_at: Mapped[datetime] = mapped_column(UtcDateTime())
