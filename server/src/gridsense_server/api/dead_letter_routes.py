"""Dead letters for the control room: list, show (the payload too), mark for replay."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, Field

from ..audit import record_now
from ..db.dead_letters import DeadLetter, DeadLetterStore
from ..registry.registry_file import ALL_SEEING_ROLES
from ..registry.viewers import Viewer
from .deps import Context, CurrentViewer
from .web_auth import address_of

router = APIRouter(tags=["dead letters"])
# A row id as the database stores it (signed 64-bit): a larger number is refused with 422
# instead of reaching the driver, which cannot bind it (a 500 before).
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]


class DeadLetterView(BaseModel):
    id: int
    received_at: datetime
    topic: str
    gateway: str | None
    reason: str
    size: int
    replay_requested: bool
    payload_base64: str | None = None  # only when one is shown

    @classmethod
    def of(cls, row: DeadLetter, *, with_payload: bool = False) -> DeadLetterView:
        return cls(id=row.id, received_at=row.received_at, topic=row.topic, gateway=row.gateway,
                   reason=row.reason, size=row.size, replay_requested=row.replay_requested,
                   payload_base64=base64.b64encode(row.payload).decode() if with_payload
                   else None)


class ReplayRequest(BaseModel):
    ids: Annotated[list[RowId], Field(max_length=10_000)]


class ReplayAnswer(BaseModel):
    marked: int


def _store(context: Context, viewer: Viewer) -> DeadLetterStore:
    # Payloads may name any grid's points: the control room's, not a grid's staff's.
    if viewer.role not in ALL_SEEING_ROLES:
        roles = " or ".join(sorted(ALL_SEEING_ROLES))
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"dead letters need role {roles} (you are {viewer.role})")
    return DeadLetterStore(context.factory, max_rows=0)


@router.get("/api/v1/dead-letters", response_model=list[DeadLetterView])
def list_dead_letters(
    viewer: CurrentViewer, context: Context, gateway: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
) -> list[DeadLetterView]:
    """Newest first; page with ``before_id`` (the last id of the previous page)."""
    rows = _store(context, viewer).recent(gateway=gateway, limit=limit, before_id=before_id)
    return [DeadLetterView.of(row) for row in rows]


@router.get("/api/v1/dead-letters/{letter_id}", response_model=DeadLetterView)
def show_dead_letter(letter_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)], viewer: CurrentViewer,
                     context: Context) -> DeadLetterView:
    row = _store(context, viewer).get(letter_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dead letter {letter_id}")
    return DeadLetterView.of(row, with_payload=True)


@router.post("/api/v1/dead-letters/replay", response_model=ReplayAnswer)
def replay_dead_letters(body: ReplayRequest, viewer: CurrentViewer,
                        context: Context, request: Request) -> ReplayAnswer:
    """Mark for replay: the server feeds them back through decode and routing within seconds."""
    marked = _store(context, viewer).request_replay(body.ids)
    record_now(context.factory, viewer.username, "dead_letters.replay",
               ",".join(map(str, body.ids))[:200], {"marked": marked}, address_of(request))
    return ReplayAnswer(marked=marked)
