"""A gateway as the API sends it: status, last health and sequence counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from ..db.models import Gateway, Point
from ..db.sequences import SequenceSummary
from ..registry.names import PointPlace, point_places


class GatewayView(BaseModel):
    id: str
    state: str  # online | offline
    last_seen_at: datetime | None
    health: dict[str, Any] | None  # the last Health message, as sent
    seq_last: int | None  # highest sequence number received
    seq_gaps: int  # holes in the received sequence numbers (messages never received)
    seq_missing: int  # sequence numbers in those holes
    seq_redelivered: int  # messages received again after being recorded
    points: list[PointPlace] = []  # the registry's points on this gateway, by id

    @classmethod
    def of(cls, gateway: Gateway, sequences: SequenceSummary | None,
           points: list[PointPlace] | None = None) -> GatewayView:
        return cls(
            points=points or [],
            id=gateway.id, state=gateway.state, last_seen_at=gateway.last_seen_at,
            health=gateway.last_health,
            seq_last=sequences.last if sequences else None,
            seq_gaps=sequences.gaps if sequences else 0,
            seq_missing=sequences.missing if sequences else 0,
            seq_redelivered=gateway.seq_redelivered or 0,
        )


def points_by_gateway(session: Session, gateways: list[str]) -> dict[str, list[PointPlace]]:
    """Each gateway's registered points with their names: one query for all the gateways."""
    result: dict[str, list[PointPlace]] = {}
    for gateway, place in point_places(session, Point.gateway.in_(gateways)):
        result.setdefault(gateway, []).append(place)
    return result
