"""FastAPI dependencies: the context, and the authenticated viewer behind a bearer token."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..access import Viewer, load_viewer
from .context import ApiContext

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
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Viewer:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("a bearer token is required")
    viewer = viewer_for_token(context, credentials.credentials)
    if viewer is None:
        raise _unauthorized("invalid or expired token")
    return viewer


CurrentViewer = Annotated[Viewer, Depends(get_viewer)]
