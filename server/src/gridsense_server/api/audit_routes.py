"""The audit log over HTTP, read-only: a page of entries, or CSV. There is deliberately no
route that changes or deletes an entry (only retention prunes, in the server itself)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from ..audit.query import AuditFilter, as_dict, export_csv, page
from .deps import Context, CurrentViewer

router = APIRouter(tags=["audit"])
READERS = frozenset({"control", "command_centre"})
CSV_MAX_ROWS = 1_000_000


class AuditView(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: str
    address: str


class AuditPage(BaseModel):
    entries: list[AuditView]
    next_before_id: int | None  # pass as before_id for the next (older) page; None: no more


def _filters(viewer_role: str, actor: str | None, action: str | None, target: str | None,
             since: datetime | None, until: datetime | None) -> AuditFilter:
    if viewer_role not in READERS:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"a {viewer_role} may not read the audit log; allowed: "
                            f"{', '.join(sorted(READERS))}")
    for name, text in (("actor", actor), ("action", action), ("target", target)):
        if text is not None and "\x00" in text:  # PostgreSQL cannot even compare it
            raise HTTPException(422, f"{name}: a NUL character is not allowed")
    for name, bound in (("since", since), ("until", until)):
        if bound is not None and bound.tzinfo is None:
            raise HTTPException(422, f"{name} needs a time zone (e.g. ...Z)")
    return AuditFilter(actor, action, target, since, until)


Actor = Annotated[str | None, Query(max_length=80)]
Action = Annotated[str | None, Query(max_length=48,
                                     description="exact, or a prefix ending in '.' (login.)")]
Target = Annotated[str | None, Query(max_length=200)]
Since = Annotated[datetime | None, Query(description="at or after (ISO time)")]
Until = Annotated[datetime | None, Query(description="before (ISO time)")]
BeforeId = Annotated[int | None, Query(ge=1, le=2**63 - 1)]  # a BIGINT at most


@router.get("/api/v1/audit", response_model=AuditPage)
def list_audit(viewer: CurrentViewer, context: Context, actor: Actor = None,
               action: Action = None, target: Target = None, since: Since = None,
               until: Until = None, before_id: BeforeId = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 100) -> AuditPage:
    """Newest first, for the control room and admins."""
    filters = _filters(viewer.role, actor, action, target, since, until)
    with context.factory() as session:
        rows = page(session, filters, limit, before_id)
        entries = [AuditView(**as_dict(row) | {"at": row.at}) for row in rows]
    return AuditPage(entries=entries,
                     next_before_id=entries[-1].id if len(entries) == limit else None)


@router.get("/api/v1/audit.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}})
def export_audit(viewer: CurrentViewer, context: Context, actor: Actor = None,
                 action: Action = None, target: Target = None, since: Since = None,
                 until: Until = None) -> StreamingResponse:
    """Oldest first, every matching entry (up to a million rows), streamed."""
    filters = _filters(viewer.role, actor, action, target, since, until)
    rows: Iterator[str] = export_csv(context.factory, filters, CSV_MAX_ROWS)
    # A sync iterator: Starlette runs it in the thread pool, where its reads belong.
    return StreamingResponse(rows, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="gridsense-audit.csv"'})
