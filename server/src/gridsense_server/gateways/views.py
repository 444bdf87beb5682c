"""A gateway as the API sends it: status, last health and sequence counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from ..db.models import Gateway
from ..db.sequences import SequenceSummary


class GatewayView(BaseModel):
    id: str
    state: str  # online | offline
    last_seen_at: datetime | None
    health: dict[str, Any] | None  # the last Health message, as sent
    seq_last: int | None  # highest sequence number received
    seq_gaps: int  # holes in the received sequence numbers (messages never received)
    seq_missing: int  # sequence numbers in those holes
    seq_redelivered: int  # messages received again after being recorded

    @classmethod
    def of(cls, gateway: Gateway, sequences: SequenceSummary | None) -> GatewayView:
        return cls(
            id=gateway.id, state=gateway.state, last_seen_at=gateway.last_seen_at,
            health=gateway.last_health,
            seq_last=sequences.last if sequences else None,
            seq_gaps=sequences.gaps if sequences else 0,
            seq_missing=sequences.missing if sequences else 0,
            seq_redelivered=gateway.seq_redelivered or 0,
        )
