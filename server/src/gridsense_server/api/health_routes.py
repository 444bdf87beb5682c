"""``/healthz``: in public only ``ok``, ``degraded`` (200) or ``down`` (503) — what a load
balancer or supervisor needs. The reasons, gauges and counters (``ingest.invalid.<reason>``,
``dead_letters.received``...) tell an outsider what the server is fed and how it fails, so they
come only with a control account's bearer token, or on the local-only port
(``http.local_port``, bound to 127.0.0.1) where monitoring on the same machine reads them.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..registry.registry_file import ALL_SEEING_ROLES
from .context import ApiContext
from .deps import Context, viewer_for_token
from .hardening import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

# Set in the ASGI scope by the local-only listener (app.py wraps its app with local_only()).
LOCAL_SCOPE_KEY = "gridsense.local"

router = APIRouter()
_bearer = HTTPBearer(auto_error=False,
                     description="a control account's token: the reasons and every counter")


def _may_see_details(request: Request, context: ApiContext,
                     credentials: HTTPAuthorizationCredentials | None) -> bool:
    if request.scope.get(LOCAL_SCOPE_KEY):
        return True
    if credentials is None or credentials.scheme.lower() != "bearer":
        return False
    try:
        viewer = viewer_for_token(context, credentials.credentials)
    except Exception:  # the database is down: the status says so; details on the local port
        log.debug("healthz: token not checked", exc_info=True)
        return False
    return viewer is not None and viewer.role in ALL_SEEING_ROLES


@router.get("/healthz", tags=["health"])
def healthz(
    request: Request, context: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> JSONResponse:
    """``{"status": "ok" | "degraded" | "down"}`` (503 when down); with a control token or on
    the local port also the reasons, every gauge and every counter."""
    health = context.health()
    body: dict[str, Any] = {"status": health.status}
    if _may_see_details(request, context, credentials):
        body |= {"reasons": health.reasons, **context.gauges(), **context.counters.snapshot()}
    code = status.HTTP_503_SERVICE_UNAVAILABLE if health.status == "down" else status.HTTP_200_OK
    return JSONResponse(body, status_code=code, headers={"Cache-Control": "no-store"})


def local_only(app: ASGIApp) -> ASGIApp:
    """The app as the local-only listener serves it: every request marked as local."""

    async def marked(scope: Scope, receive: Receive, send: Send) -> None:
        scope[LOCAL_SCOPE_KEY] = True
        await app(scope, receive, send)

    return marked
