"""Residents' phones and visitors' links: sign in with a one-time code, the resident's own pass
(a day of one-minute QR tokens the page keeps for a basement without signal), inviting and
revoking visitors for their own building, and the visitor's page behind an unguessable link.

A resident session reaches only these routes and only its own credential's passes. Changes
need the session's CSRF token (``X-CSRF-Token``, from ``GET /api/v1/resident/me``) and, when
the browser sends one, this server's Origin. Refusals are Chinese first.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridsense_protocol import utc_now

from ..audit import record
from ..auth.addresses import throttle_subject
from ..db.access_models import AccessLogEntry, Credential
from ..db.pass_models import AccessPass
from ..passes import records, residents
from ..passes.keys import KeyProblem
from ..passes.service import PassService
from .deps import Context
from .web_auth import CSRF_HEADER, SAFE_METHODS, WebAuth, web_auth_of

router = APIRouter(tags=["passes"])


def service_of(request: Request) -> PassService:
    found = getattr(request.app.state, "passes", None)
    if found is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "电子通行证未启用 / passes "
                            "not configured")
    return found


def refused(exc: records.PassRefused | KeyProblem) -> HTTPException:
    if isinstance(exc, KeyProblem):
        return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                             f"通行证签名密钥不可用 / {exc}")
    return HTTPException(exc.status, str(exc))


def changed(request: Request, community: str) -> None:
    sync = getattr(request.app.state, "access_sync", None)
    if sync is not None:
        sync.changed(community)


def _resident(request: Request, context: Context) -> residents.Resident:
    session_id = request.cookies.get(residents.COOKIE, "")
    with context.factory() as session:
        found = residents.check(session, session_id)
    if found is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "请用一次性登录码登录 / sign in with "
                            "your one-time code")
    if request.method not in SAFE_METHODS:
        web = getattr(request.app.state, "web_auth", None)
        if web is not None and not web.origin_allowed(request):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "跨站请求被拒绝 / cross-site "
                                "request refused")
        sent = request.headers.get(CSRF_HEADER.lower(), "")
        if not hmac.compare_digest(sent.encode(), found.csrf.encode()):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"缺少或错误的 {CSRF_HEADER} / "
                                f"CSRF token missing or wrong")
    return found


CurrentResident = Annotated[residents.Resident, Depends(_resident)]


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Annotated[str, Field(min_length=1, max_length=40)]


class ResidentView(BaseModel):
    credential: str
    name: str
    community: str
    buildings: list[str]
    csrf_token: str


def _blocked(web: WebAuth, throttle: Any, subjects: list[str]) -> None:
    blocked = throttle.blocked(subjects)
    if blocked is not None:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            f"尝试次数过多，请 {blocked.retry_after_s} 秒后再试 / too many "
                            f"attempts; try again in {blocked.retry_after_s} s",
                            headers={"Retry-After": str(blocked.retry_after_s)})


@router.post("/api/v1/resident/sign-in", response_model=ResidentView)
def sign_in(body: SignIn, request: Request, response: Response, context: Context) -> Any:
    """Redeem a one-time code; the phone gets a resident session cookie. Guesses are
    throttled per address like staff sign-ins."""
    service, web = service_of(request), web_auth_of(request)
    address = web.address(request)
    subjects = [throttle_subject(address)]
    _blocked(web, service.code_throttle, subjects)
    with context.factory.begin() as session:
        credential_id = residents.redeem(session, body.code)
        session_id = None if credential_id is None else residents.open_session(session,
                                                                                credential_id)
        if credential_id is not None:
            record(session, f"resident:{credential_id}", "resident.sign_in", credential_id, {},
                   address)
    if credential_id is None or session_id is None:
        context.counters.inc("passes.code_failures")
        service.code_throttle.failure(subjects)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "登录码无效、已用过或已过期 / the "
                            "code is wrong, used or expired")
    response.set_cookie(residents.COOKIE, session_id,
                        max_age=int(residents.SESSION_TTL.total_seconds()), path="/",
                        secure=web.cookie_secure, httponly=True, samesite="strict")
    with context.factory() as session:
        return _me(session, credential_id, residents.csrf_token(session_id))


def _me(session: Session, credential_id: str, csrf: str) -> ResidentView:
    cred = session.get(Credential, credential_id)
    assert cred is not None
    return ResidentView(credential=cred.id, name=cred.holder, community=cred.community_id,
                        buildings=list(cred.buildings), csrf_token=csrf)


@router.get("/api/v1/resident/me", response_model=ResidentView)
def me(resident: CurrentResident, context: Context) -> Any:
    with context.factory() as session:
        return _me(session, resident.credential_id, resident.csrf)


@router.post("/api/v1/resident/sign-out", status_code=204)
def sign_out(request: Request, response: Response, resident: CurrentResident,
             context: Context) -> None:
    with context.factory.begin() as session:
        residents.end(session, request.cookies.get(residents.COOKIE, ""))
    response.delete_cookie(residents.COOKIE, path="/", httponly=True, samesite="strict")


class TokenView(BaseModel):
    not_before: int
    not_after: int
    qr: str


class ResidentPassView(BaseModel):
    pass_id: str
    form: str  # S signed, M compact
    name: str
    buildings: list[str]
    not_after: datetime
    server_time: int  # epoch seconds: the page corrects a phone clock that is off
    tokens: list[TokenView]  # one a minute, from the current minute, for a day


@router.get("/api/v1/resident/pass", response_model=ResidentPassView)
def resident_pass(request: Request, resident: CurrentResident, context: Context) -> Any:
    service = service_of(request)
    try:
        with context.factory.begin() as session:
            cred = records.credential(session, resident.credential_id)
            row, made = records.resident_pass(session, cred)
            windows = records.minute_windows(row, utc_now())
            form, texts = records.qr_texts(session, row, service.key_dir, windows)
            view = ResidentPassView(
                pass_id=row.pass_id, form=form, name=cred.holder, buildings=list(cred.buildings),
                not_after=row.not_after, server_time=int(utc_now().timestamp()),
                tokens=[TokenView(not_before=a, not_after=b, qr=t)
                        for (a, b), t in zip(windows, texts, strict=True)])
            community = cred.community_id
    except (records.PassRefused, KeyProblem) as exc:
        raise refused(exc) from None
    if made:
        changed(request, community)
    return view


class VisitorInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=100)]
    phone: Annotated[str, Field(pattern=r"^\+?[0-9 -]{5,20}$")]
    not_before: datetime
    not_after: datetime
    uses: Annotated[int, Field(ge=1, le=records.MAX_VISITOR_USES)] = 1
    buildings: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list,
                                                                    max_length=8)
    doors: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list,
                                                                max_length=8)


class VisitorPassView(BaseModel):
    pass_id: str
    visitor_name: str | None
    visitor_phone: str | None
    inviter: str
    not_before: datetime
    not_after: datetime
    uses: int
    used: int
    buildings: list[str]
    doors: list[str]
    revoked: bool
    created_by: str
    link: str | None = None  # only in the answer that made it

    @classmethod
    def of(cls, row: AccessPass, used: int, link: str | None = None) -> VisitorPassView:
        return cls(pass_id=row.pass_id, visitor_name=row.visitor_name,
                   visitor_phone=row.visitor_phone, inviter=row.holder,
                   not_before=row.not_before, not_after=row.not_after, uses=row.uses, used=used,
                   buildings=row.buildings, doors=row.doors, revoked=row.revoked,
                   created_by=row.created_by, link=link)


def used_counts(session: Session, pass_ids: list[str]) -> dict[str, int]:
    if not pass_ids:
        return {}
    return dict(session.execute(  # type: ignore[arg-type]
        select(AccessLogEntry.pass_id, func.count()).where(
            AccessLogEntry.pass_id.in_(pass_ids), AccessLogEntry.result == "granted")
        .group_by(AccessLogEntry.pass_id)).all())


def views(session: Session, rows: list[AccessPass]) -> list[VisitorPassView]:
    used = used_counts(session, [r.pass_id for r in rows])
    return [VisitorPassView.of(r, used.get(r.pass_id, 0)) for r in rows]


def to_request(body: VisitorInput) -> records.VisitorRequest:
    for value in (body.not_before, body.not_after):
        if value.tzinfo is None:
            raise HTTPException(422, "时间须带时区 / times need a zone (e.g. +08:00)")
    return records.VisitorRequest(body.name.strip(), body.phone.strip(), body.not_before,
                                  body.not_after, body.uses, body.buildings, body.doors)


@router.get("/api/v1/resident/visitors", response_model=list[VisitorPassView])
def my_visitors(resident: CurrentResident, context: Context) -> Any:
    since = utc_now() - timedelta(days=7)
    with context.factory() as session:
        rows = list(session.scalars(select(AccessPass).where(
            AccessPass.holder == resident.credential_id, AccessPass.kind == "visitor",
            AccessPass.not_after > since).order_by(AccessPass.created_at.desc()).limit(100)))
        return views(session, rows)


@router.post("/api/v1/resident/visitors", response_model=VisitorPassView, status_code=201)
def invite(body: VisitorInput, request: Request, resident: CurrentResident,
           context: Context) -> Any:
    service = service_of(request)
    try:
        with context.factory.begin() as session:
            cred = records.credential(session, resident.credential_id)
            buildings = body.buildings or list(cred.buildings[:1])
            row, token = records.add_visitor(
                session, cred, to_request(body.model_copy(update={"buildings": buildings})),
                f"resident:{cred.id}", own_building_only=True)
            record(session, f"resident:{cred.id}", "pass.invite", row.pass_id,
                   {"uses": row.uses, "buildings": row.buildings}, web_auth_of(request)
                   .address(request))
            view = VisitorPassView.of(row, 0, service.link(token))
            community = cred.community_id
    except records.PassRefused as exc:
        raise refused(exc) from None
    changed(request, community)
    return view


@router.post("/api/v1/resident/visitors/{pass_id}/revoke", response_model=VisitorPassView)
def revoke_mine(pass_id: str, request: Request, resident: CurrentResident,
                context: Context) -> Any:
    with context.factory.begin() as session:
        row = session.get(AccessPass, pass_id[:16])
        if row is None or row.holder != resident.credential_id or row.kind != "visitor":
            raise HTTPException(404, "没有这张访客通行证 / no such visitor pass")
        if records.revoke(session, row, f"resident:{resident.credential_id}"):
            record(session, f"resident:{resident.credential_id}", "pass.revoke", row.pass_id,
                   {}, web_auth_of(request).address(request))
        view = views(session, [row])[0]
        community = row.community_id
    changed(request, community)
    return view


class VisitorPageView(BaseModel):
    visitor_name: str | None
    buildings: list[str]
    doors: list[str]
    not_before: datetime
    not_after: datetime
    uses: int
    used: int
    state: str  # valid | not_yet | expired | revoked | used_up
    form: str | None
    qr: str | None  # None unless the pass can still be used


@router.get("/api/v1/visitor/{token}", response_model=VisitorPageView)
def visitor_page(token: str, request: Request, context: Context) -> Any:
    """The visitor's page behind the link: no sign-in; wrong links are throttled per
    address."""
    service, web = service_of(request), web_auth_of(request)
    subjects = [throttle_subject(web.address(request))]
    _blocked(web, service.link_throttle, subjects)
    try:
        with context.factory() as session:
            row = records.by_link(session, token)
            if row is None:
                service.link_throttle.failure(subjects)
                context.counters.inc("passes.link_failures")
                raise HTTPException(404, "链接无效 / this link is not valid")
            used = used_counts(session, [row.pass_id]).get(row.pass_id, 0)
            now = utc_now()
            holder = session.get(Credential, row.holder)
            gone = row.revoked or holder is None or holder.revoked  # the inviter's too
            state = ("revoked" if gone else "expired" if row.not_after <= now
                     else "used_up" if used >= row.uses else
                     "not_yet" if row.not_before > now else "valid")
            form, texts = (records.qr_texts(session, row, service.key_dir,
                                            records.visitor_window(row))
                           if state in ("valid", "not_yet") else (None, [None]))
            session.commit()
    except KeyProblem as exc:
        raise refused(exc) from None
    return VisitorPageView(visitor_name=row.visitor_name, buildings=row.buildings,
                           doors=row.doors, not_before=row.not_before, not_after=row.not_after,
                           uses=row.uses, used=used, state=state, form=form, qr=texts[0])
