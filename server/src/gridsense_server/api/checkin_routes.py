"""``POST /api/v1/incidents/{id}/checkin``: the worker at the point, by the label's QR text or
the code under it. A wrong or foreign label is refused with the reason, counted, and
throttled per person (scope ``checkin``): eight digits are guessable only at login's pace."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.orm import Session

from gridsense_protocol import utc_now
from gridsense_protocol.qr import MAX_QR_TEXT

from ..audit import record
from ..auth.throttle import Throttle
from ..onsite.checkin import check_in
from ..onsite.labels import LabelSigner
from ..onsite.refusals import LabelRefused
from ..workorders.states import Refused
from ..workorders.views import ActionResult, IncidentView, TransitionView, names_of
from .action_once import apply_once
from .deps import Context, CurrentViewer
from .incident_routes import action_context, announce
from .photo_routes import refusal_detail
from .web_auth import address_of

router = APIRouter()
CHECKIN_SCOPE = "checkin"


@dataclass(frozen=True, slots=True)
class CheckinParts:
    """``app.state.checkin``: the label signer and the throttle of wrong labels."""

    signer: LabelSigner
    throttle: Throttle


class CheckinRequest(BaseModel):
    qr: str | None = Field(default=None, max_length=MAX_QR_TEXT)  # the scanned text
    code: str | None = Field(default=None, max_length=32)  # typed from under the QR
    action_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:\-]{8,64}$")

    @model_validator(mode="after")
    def _one_of(self) -> CheckinRequest:
        if (self.qr is None) == (self.code is None):
            raise ValueError("give either qr (the scanned text) or code (typed), not both")
        return self


def checkin_parts(request: Request) -> CheckinParts:
    parts = getattr(request.app.state, "checkin", None)
    if parts is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "check-in not configured")
    return parts


@router.post("/api/v1/incidents/{incident_id}/checkin", response_model=ActionResult,
             tags=["incidents"],
             responses={400: {"description": "not this point's label or code"},
                        429: {"description": "too many wrong labels; see Retry-After"}})
def checkin(incident_id: str, body: CheckinRequest, viewer: CurrentViewer, context: Context,
            request: Request) -> ActionResult:
    parts = checkin_parts(request)
    lifecycle = action_context(request)
    subjects = [f"user:{viewer.username}"]
    blocked = parts.throttle.blocked(subjects)
    if blocked is not None:
        context.counters.inc("api.checkin_throttled")
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, refusal_detail(
            "429", f"too many wrong labels; try again in {blocked.retry_after_s} s"),
            headers={"Retry-After": str(blocked.retry_after_s)})
    by = "qr" if body.qr is not None else "code"
    text = body.qr if body.qr is not None else body.code or ""

    def apply(session: Session) -> ActionResult:
        incident, entry = check_in(session, parts.signer, incident_id, viewer, by, text,
                                   utc_now())
        record(session, viewer.username, f"incident.checkin_{by}", incident_id,
               {"point": incident.point_id}, address_of(request))
        session.flush()
        return ActionResult(incident=IncidentView.of(incident, names_of(session, incident)),
                            transition=TransitionView.of(entry))

    try:
        result, again = apply_once(context, viewer, incident_id, f"checkin_{by}",
                                   body.action_id, apply)
    except Refused as refused:
        context.counters.inc(f"api.actions_refused.{refused.status}")
        raise HTTPException(refused.status, refused.reason) from None
    except LabelRefused as wrong:
        context.counters.inc(f"api.checkin_refused.{wrong.key}")
        now_blocked = parts.throttle.failure(subjects)
        headers = {"Retry-After": str(now_blocked.retry_after_s)} if now_blocked else None
        raise HTTPException(status.HTTP_400_BAD_REQUEST, refusal_detail(wrong.key, wrong.detail),
                            headers=headers) from None
    parts.throttle.success(subjects)
    if not again:
        announce(context, lifecycle, f"checkin_{by}", result)
    return result
