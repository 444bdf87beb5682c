"""Browser sessions over HTTP: sign in (sets the cookie), who am I (with the CSRF token), sign
out, sign out everywhere; for admins (``control``): end a user's sessions, lift a throttle."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session as DbSession

from ..audit import record_now
from ..auth.addresses import throttle_subject
from ..auth.sessions import SessionInfo
from ..db.models import ID_LEN, Staff
from ..registry.viewers import Viewer, load_viewer
from .deps import Context, CurrentViewer
from .login import authenticate
from .web_auth import WebAuth, web_auth_of

router = APIRouter(tags=["auth"])
ADMIN_ROLES = frozenset({"control"})


NO_NUL = r"^[^\x00]+$"  # PostgreSQL stores no NUL in text: refused here, not as a 500


class SessionRequest(BaseModel):
    username: Annotated[str, Field(min_length=1, max_length=ID_LEN, pattern=NO_NUL)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class SessionView(BaseModel):
    username: str
    name: str  # the person's name from the registry, shown in the page's header
    role: str
    csrf_token: str  # send as X-CSRF-Token with every request that changes something
    idle_expires_at: datetime
    expires_at: datetime


class Revoked(BaseModel):
    revoked: int


class UnlockRequest(BaseModel):
    subject: Annotated[str, Field(min_length=1, max_length=100, pattern=NO_NUL,
                                  description="a user name or an address")]


class Unlocked(BaseModel):
    cleared: int


def _view(web: WebAuth, info: SessionInfo, viewer: Viewer, name: str) -> SessionView:
    return SessionView(username=info.username, name=name, role=viewer.role,
                       csrf_token=info.csrf_token(web.csrf_secret),
                       idle_expires_at=info.idle_expires_at, expires_at=info.expires_at)


@router.post("/api/v1/auth/session", response_model=SessionView,
             responses={429: {"description": "too many failed sign-ins; see Retry-After"}})
def sign_in(body: SessionRequest, request: Request, response: Response,
            context: Context) -> SessionView:
    """Sign in from the web page: an httpOnly, Secure, SameSite=Strict session cookie."""
    web = web_auth_of(request)
    if not web.origin_allowed(request):  # login CSRF: a hostile page signing you in as itself
        raise web.refuse(request, body.username, "cross-site sign-in refused")
    username = authenticate(context, web, request, body.username, body.password, via="session")
    with context.factory() as session:
        viewer = load_viewer(session, username)
        name = _name_of(session, username)
    assert viewer is not None  # the password was just checked against this row
    session_id, info = web.sessions.create(username, web.address(request),
                                           request.headers.get("user-agent", ""))
    web.set_cookie(response, session_id)
    return _view(web, info, viewer, name)


def _name_of(session: DbSession, username: str) -> str:
    staff = session.get(Staff, username)
    return staff.name if staff is not None and staff.name else username


def _session(request: Request) -> SessionInfo:
    info = getattr(request.state, "web_session", None)
    if info is None:
        raise HTTPException(status.HTTP_400_BAD_REQUEST,
                            "this is for a browser session (cookie), not a bearer token")
    return info


@router.get("/api/v1/auth/session", response_model=SessionView)
def current_session(viewer: CurrentViewer, request: Request, context: Context) -> SessionView:
    info = _session(request)
    with context.factory() as session:
        name = _name_of(session, viewer.username)
    return _view(web_auth_of(request), info, viewer, name)


@router.delete("/api/v1/auth/session", status_code=204)
def sign_out(viewer: CurrentViewer, request: Request, context: Context) -> Response:
    web = web_auth_of(request)
    web.sessions.revoke(_session(request).id_hash)
    web.watch.recheck(viewer.username)
    record_now(context.factory, viewer.username, "logout", viewer.username, "",
               web.address(request))
    response = Response(status_code=204)
    web.clear_cookie(response)
    return response


def _end_all(request: Request, context: Context, actor: str, username: str) -> Revoked:
    web = web_auth_of(request)
    revoked = web.sessions.revoke_all(username)
    web.watch.recheck(username)
    record_now(context.factory, actor, "logout.everywhere", username, {"sessions": revoked},
               web.address(request))
    return Revoked(revoked=revoked)


@router.post("/api/v1/auth/logout-everywhere", response_model=Revoked)
def sign_out_everywhere(viewer: CurrentViewer, request: Request, context: Context) -> Revoked:
    """End every session of the caller (a lost phone: sign in elsewhere and press this)."""
    return _end_all(request, context, viewer.username, viewer.username)


def _admin(viewer: Viewer) -> None:
    if viewer.role not in ADMIN_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"a {viewer.role} may not; allowed: {', '.join(sorted(ADMIN_ROLES))}")


@router.post("/api/v1/auth/users/{username}/logout-everywhere", response_model=Revoked)
def end_sessions_of(username: Annotated[str, Path(max_length=ID_LEN, pattern=NO_NUL)],
                    viewer: CurrentViewer,
                    request: Request, context: Context) -> Revoked:
    """An admin ends every session of ``username`` (a stolen phone reported by phone)."""
    _admin(viewer)
    return _end_all(request, context, viewer.username, username)


@router.post("/api/v1/auth/unlock", response_model=Unlocked)
def unlock(body: UnlockRequest, viewer: CurrentViewer, request: Request,
           context: Context) -> Unlocked:
    """An admin lifts the sign-in delay or lockout of an account or an address."""
    _admin(viewer)
    web = web_auth_of(request)
    cleared = web.throttle.unlock([f"user:{body.subject}", throttle_subject(body.subject)])
    record_now(context.factory, viewer.username, "auth.unlock", body.subject,
               {"cleared": cleared}, web.address(request))
    return Unlocked(cleared=cleared)
