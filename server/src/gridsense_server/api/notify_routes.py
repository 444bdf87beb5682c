"""POST /api/v1/notify/test: a test message on a person's or a grid's channels, with each
vendor's answer (control only: it reaches anyone's phone). GET /api/v1/incidents/{id}/reads:
who of those paged has opened the incident, by which channel (read receipts);
GET /api/v1/incidents/{id}/pages: every page sent about it, to whom, how, and whether read."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field
from sqlalchemy import select

from ..db.models import Notification, Staff
from ..db.page_reads import reads_of
from ..notify.channel_check import UnknownAddressee
from ..registry.registry_file import ALL_SEEING_ROLES
from .deps import Context, CurrentViewer, visible_incident

router = APIRouter(tags=["notify"])


class ChannelTestRequest(BaseModel):
    who: str = Field(min_length=1, max_length=80)  # username, or grid id (grid:g01)
    channel: str | None = Field(default=None, max_length=24)


class ChannelTestAnswer(BaseModel):
    addressee: str
    channel: str
    target: str
    status: str  # sent | rate_limited | retry | bad_config
    vendor: str
    code: str
    detail: str


@router.post("/api/v1/notify/test", response_model=list[ChannelTestAnswer])
def send_test_message(body: ChannelTestRequest, viewer: CurrentViewer,
                      context: Context) -> list[ChannelTestAnswer]:
    if viewer.role not in ALL_SEEING_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"test messages need role control (you are {viewer.role})")
    if context.channel_test is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "notifications not running")
    try:
        results = context.channel_test(body.who, body.channel)
    except UnknownAddressee as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return [ChannelTestAnswer(**r.to_json()) for r in results]


class PageReadView(BaseModel):
    username: str
    channel: str
    read_at: datetime


@router.get("/api/v1/incidents/{incident_id}/reads", response_model=list[PageReadView])
def page_reads(incident_id: str, viewer: CurrentViewer, context: Context) -> list[PageReadView]:
    """First opening per person and channel, oldest first (whoever may see the incident)."""
    with context.factory() as session:
        visible_incident(session, viewer, incident_id)
        return [PageReadView(username=r.username, channel=r.channel, read_at=r.read_at)
                for r in reads_of(session, incident_id)]


class PageSentView(BaseModel):
    recipient: str  # username, or grid:<id> for a grid's group channel
    name: str | None  # the person's name from the registry
    channel: str  # app, or a contact's channel (wecom, sms, …)
    step: str  # the escalation step that sent it
    status: str  # pending | retry | sent | digested | failed
    created_at: datetime
    sent_at: datetime | None
    read_at: datetime | None  # when this person first opened the incident (any channel)


PAGES_LIMIT = 500  # a runaway escalation loop still answers in one small response


@router.get("/api/v1/incidents/{incident_id}/pages", response_model=list[PageSentView])
def pages_sent(incident_id: str, viewer: CurrentViewer, context: Context) -> list[PageSentView]:
    """The incident's pages, oldest first, each with its addressee's first reading."""
    with context.factory() as session:
        visible_incident(session, viewer, incident_id)
        first_read: dict[str, datetime] = {}
        for read in reads_of(session, incident_id):
            first_read.setdefault(read.username, read.read_at)
        rows = session.execute(
            select(Notification, Staff.name)
            .outerjoin(Staff, Staff.username == Notification.recipient)
            .where(Notification.incident_id == incident_id)
            .order_by(Notification.created_at, Notification.id).limit(PAGES_LIMIT))
        return [PageSentView(recipient=row.recipient, name=name, channel=row.channel,
                             step=row.step, status=row.status, created_at=row.created_at,
                             sent_at=row.sent_at, read_at=first_read.get(row.recipient))
                for row, name in rows]
