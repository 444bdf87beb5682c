"""POST /api/v1/notify/test: a test message on a person's or a grid's channels, with each
vendor's answer (control only: it reaches anyone's phone)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from ..notify.channel_check import UnknownAddressee
from ..registry.registry_file import ALL_SEEING_ROLES
from .deps import Context, CurrentViewer

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
