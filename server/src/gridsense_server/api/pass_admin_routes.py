"""The control room's side of electronic passes: one-time sign-in codes for residents, visitor
passes on a resident's behalf, revocation, a community's pass setting (compact passes for OSDP
readers), and the passes of a community. Same roles as managing credentials."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from gridsense_protocol import utc_now

from ..audit import record
from ..db.access_models import Credential
from ..db.models import Community
from ..db.pass_models import AccessPass, PassSite
from ..passes import keys, records, residents
from .access_routes import _manager, managed_communities
from .deps import Context, CurrentViewer
from .resident_routes import (
    VisitorInput,
    VisitorPassView,
    changed,
    refused,
    service_of,
    to_request,
    views,
)
from .web_auth import address_of

router = APIRouter(tags=["passes"])


class CodeView(BaseModel):
    credential: str
    holder: str
    code: str  # shown once: print it or send it to the resident
    expires_at: datetime
    sign_in_url: str
    sent: str | None = None  # the channel's answer when it was sent ("sent", or why not)


class CodeInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: Annotated[int, Field(ge=1, le=30)] = 7
    # A channel the resident has (a contact URL as in the registry: mailto://, wecom://...);
    # the control room only (the server would send wherever it names).
    send_to: Annotated[str, Field(min_length=3, max_length=500)] | None = None


def _credential(context: Any, viewer: Any, credential_id: str) -> Credential:
    with context.factory() as session:
        cred = session.get(Credential, credential_id)
        if cred is None:
            raise HTTPException(404, f"没有凭证 {credential_id} / no credential "
                                f"{credential_id!r}")
        _manager(session, viewer, cred.community_id)
        return cred


@router.post("/api/v1/credentials/{credential_id}/resident-code", response_model=CodeView,
             status_code=201)
def issue_code(credential_id: str, request: Request, viewer: CurrentViewer, context: Context,
               body: CodeInput | None = None) -> Any:
    """A one-time code the resident signs in with on their phone (voids older unused ones
    beyond a few)."""
    service = service_of(request)
    cred = _credential(context, viewer, credential_id)
    body = body or CodeInput()
    if body.send_to is not None and viewer.role != "control":
        raise HTTPException(403, "只有监控中心可发送登录码 / only the control room sends codes "
                            f"to a channel (you are {viewer.role})")
    try:
        with context.factory.begin() as session:
            code, expires = residents.issue_code(session, cred.id, f"staff:{viewer.username}",
                                                 timedelta(days=body.days))
            record(session, viewer.username, "resident.code", cred.id,
                   {"sent_to_scheme": body.send_to and body.send_to.partition("://")[0]},
                   address_of(request))
    except LookupError as exc:
        raise HTTPException(409, f"凭证已注销 / {exc}") from None
    sent = None
    if body.send_to is not None:
        try:
            outcome = service.send_code(body.send_to, cred.holder, code,
                                        expires.strftime("%Y-%m-%d %H:%M UTC"))
            sent = outcome.status if outcome.sent else outcome.describe()
        except LookupError as exc:
            sent = str(exc)
    return CodeView(credential=cred.id, holder=cred.holder, code=code, expires_at=expires,
                    sign_in_url=f"{service.public_url}/#/r", sent=sent)


class AdminVisitorInput(VisitorInput):
    inviter: Annotated[str, Field(min_length=1, max_length=64)]  # the resident's credential


@router.post("/api/v1/communities/{community}/visitor-passes", response_model=VisitorPassView,
             status_code=201)
def add_visitor(community: str, body: AdminVisitorInput, request: Request,
                viewer: CurrentViewer, context: Context) -> Any:
    service = service_of(request)
    cred = _credential(context, viewer, body.inviter)
    if cred.community_id != community:
        raise HTTPException(422, f"住户 {cred.id} 不属于 {community} / resident {cred.id} is "
                            f"not in community {community}")
    try:
        with context.factory.begin() as session:
            inviter = records.credential(session, cred.id)
            row, token = records.add_visitor(session, inviter, to_request(body),
                                             f"staff:{viewer.username}",
                                             own_building_only=False)
            record(session, viewer.username, "pass.invite", row.pass_id,
                   {"inviter": inviter.id, "uses": row.uses}, address_of(request))
            view = VisitorPassView.of(row, 0, service.link(token))
    except records.PassRefused as exc:
        raise refused(exc) from None
    changed(request, community)
    return view


@router.get("/api/v1/communities/{community}/passes", response_model=list[VisitorPassView])
def list_passes(community: str, viewer: CurrentViewer, context: Context,
                kind: Literal["resident", "visitor"] | None = None,
                limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> Any:
    """Passes not expired more than a week ago, newest first."""
    with context.factory() as session:
        _manager(session, viewer, community)
        stmt = select(AccessPass).where(AccessPass.community_id == community,
                                        AccessPass.not_after > utc_now() - timedelta(days=7))
        if kind is not None:
            stmt = stmt.where(AccessPass.kind == kind)
        rows = list(session.scalars(stmt.order_by(AccessPass.created_at.desc()).limit(limit)))
        return views(session, rows)


@router.post("/api/v1/passes/{pass_id}/revoke", response_model=VisitorPassView)
def revoke(pass_id: str, request: Request, viewer: CurrentViewer, context: Context) -> Any:
    with context.factory.begin() as session:
        row = session.get(AccessPass, pass_id[:16])
        if row is None:
            raise HTTPException(404, "没有这张通行证 / no such pass")
        _manager(session, viewer, row.community_id)
        if records.revoke(session, row, f"staff:{viewer.username}"):
            record(session, viewer.username, "pass.revoke", row.pass_id, {},
                   address_of(request))
        view = views(session, [row])[0]
        community = row.community_id
    changed(request, community)
    return view


class PassSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    compact: bool  # the community's gates read through OSDP readers: 62-character passes


@router.put("/api/v1/communities/{community}/pass-settings", response_model=PassSettings)
def pass_settings(community: str, body: PassSettings, request: Request,
                  viewer: CurrentViewer, context: Context) -> Any:
    with context.factory.begin() as session:
        _manager(session, viewer, community)
        try:
            site = keys.pass_site(session, community)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        if site.compact != body.compact:
            site.compact = body.compact
            keys.bump(session, community)
            record(session, viewer.username, "pass.settings", community,
                   {"compact": body.compact}, address_of(request))
    changed(request, community)
    return body


class CommunityView(BaseModel):
    id: str
    name: str
    compact: bool


@router.get("/api/v1/pass-communities", response_model=list[CommunityView])
def pass_communities(viewer: CurrentViewer, context: Context) -> Any:
    """The communities whose passes the caller manages, with their pass setting."""
    with context.factory() as session:
        allowed = managed_communities(session, viewer)
        stmt = select(Community).order_by(Community.id)
        if allowed is not None:
            stmt = stmt.where(Community.id.in_(sorted(allowed)))
        out = []
        for row in session.scalars(stmt):
            site = session.get(PassSite, row.id)
            out.append(CommunityView(id=row.id, name=row.name,
                                     compact=bool(site and site.compact)))
        return out
