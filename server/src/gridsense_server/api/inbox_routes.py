"""``/api/v1/inbox``: the pages a person received, kept on the server (a page sent while the
phone's app was closed waits here, unread). The live stream says ``{"type": "page"}`` when one
arrives; the app then reads the unread count again."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel
from sqlalchemy import select

from gridsense_protocol import utc_now

from ..db.models import Incident
from ..db.page_reads import mark_read
from ..notify.inbox import inbox, unread_count
from ..workorders.views import IncidentView, named_incidents
from .deps import Context, CurrentViewer, visible_incident

router = APIRouter()


class InboxItem(BaseModel):
    incident_id: str
    paged_at: datetime
    pages: int
    channels: list[str]
    title: str
    body: str
    unread: bool
    read_at: datetime | None
    incident: IncidentView | None  # None: no longer visible to you (moved out of your grids)


class UnreadCount(BaseModel):
    unread: int


class ReadAnswer(BaseModel):
    incident_id: str
    newly_read: bool  # False: it was read before (or you were not paged about it)
    unread: int


@router.get("/api/v1/inbox", response_model=list[InboxItem], tags=["inbox"])
def list_inbox(viewer: CurrentViewer, context: Context,
               unread: Annotated[bool, Query(description="only the unread")] = False,
               limit: Annotated[int, Query(ge=1, le=200)] = 50,
               offset: Annotated[int, Query(ge=0, le=100_000)] = 0) -> list[InboxItem]:
    """Unread first, then by the latest page, newest first."""
    with context.factory() as session:
        entries = inbox(session, viewer.username, unread_only=unread, limit=limit,
                        offset=offset)
        views = {v.id: v for v in named_incidents(session, select(Incident).where(
            Incident.id.in_([e.incident_id for e in entries])))}
    return [InboxItem(incident_id=e.incident_id, paged_at=e.paged_at, pages=e.pages,
                      channels=e.channels, title=e.title, body=e.body,
                      unread=e.read_at is None, read_at=e.read_at,
                      incident=v if (v := views.get(e.incident_id)) is not None
                      and viewer.sees_grid(v.grid) else None) for e in entries]


@router.get("/api/v1/inbox/unread", response_model=UnreadCount, tags=["inbox"])
def count_unread(viewer: CurrentViewer, context: Context) -> UnreadCount:
    with context.factory() as session:
        return UnreadCount(unread=unread_count(session, viewer.username))


@router.post("/api/v1/inbox/{incident_id}/read", response_model=ReadAnswer, tags=["inbox"])
def read_page(incident_id: str, viewer: CurrentViewer, context: Context) -> ReadAnswer:
    """Mark the page read (channel ``app``), as opening the incident does."""
    with context.factory.begin() as session:
        try:
            visible_incident(session, viewer, incident_id)
        except HTTPException:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such incident") from None
        added = mark_read(session, incident_id, viewer.username, "app", utc_now())
        session.flush()
        return ReadAnswer(incident_id=incident_id, newly_read=added,
                          unread=unread_count(session, viewer.username))
