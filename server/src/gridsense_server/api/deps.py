"""FastAPI dependencies: the context, the authenticated viewer (behind a bearer token, or a
browser's session cookie with its CSRF checks), and the incident a viewer may see."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.models import Incident, IncidentEvent
from ..registry.viewers import Viewer, load_viewer
from .context import ApiContext
from .web_auth import BACKGROUND_HEADER

_bearer = HTTPBearer(auto_error=False, description="token from POST /api/v1/auth/token")


def get_context(request: Request) -> ApiContext:
    return request.app.state.context


Context = Annotated[ApiContext, Depends(get_context)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail,
                         headers={"WWW-Authenticate": "Bearer"})


def viewer_for_token(context: ApiContext, token: str | None) -> Viewer | None:
    """Blocking (one small database read): call from a worker thread."""
    username = context.signer.verify(token) if token else None
    if username is None:
        return None
    with context.factory() as session:
        return load_viewer(session, username)


def get_viewer(
    context: Context,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Viewer:
    if credentials is not None:
        if credentials.scheme.lower() != "bearer":
            raise _unauthorized("a bearer token is required")
        viewer = viewer_for_token(context, credentials.credentials)
        if viewer is None:
            raise _unauthorized("invalid or expired token")
        return viewer
    web = getattr(request.app.state, "web_auth", None)
    info = None if web is None else web.session_of(
        request, touch=request.headers.get(BACKGROUND_HEADER.lower()) != "1")
    if web is None or info is None:
        raise _unauthorized("sign in, or send a bearer token")
    web.check_csrf(request, info)
    request.state.web_session = info
    with context.factory() as session:
        viewer = load_viewer(session, info.username)
    if viewer is None:  # removed from the registry since signing in
        raise _unauthorized("this user no longer exists")
    return viewer


CurrentViewer = Annotated[Viewer, Depends(get_viewer)]


def visible_incident(session: Session, viewer: Viewer, incident_id: str,
                     ) -> tuple[Incident, list[str]]:
    """The incident and its event ids, oldest first; 404 alike for one that does not exist and
    one in a grid the viewer does not see (no probing for ids)."""
    incident = session.get(Incident, incident_id)
    if incident is None or not viewer.sees_grid(incident.grid_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such incident")
    event_ids = list(session.scalars(
        select(IncidentEvent.event_id).where(IncidentEvent.incident_id == incident_id)
        .order_by(IncidentEvent.ts, IncidentEvent.id)))
    return incident, event_ids
