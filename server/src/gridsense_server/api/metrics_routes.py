"""``/metrics`` for Prometheus. What it shows (ingest by kind, refusals by reason, pages by
channel, incidents by state) tells an outsider how the deployment runs, so it is served
without a token only on the local-only listener (127.0.0.1); on the main port a request must
bear the operator's metrics token (``http.metrics_token_file``), compared in constant time.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .deps import Context
from .health_routes import LOCAL_SCOPE_KEY

# The Prometheus text exposition format, version 0.0.4 (what prometheus-client produces).
METRICS_MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"

router = APIRouter()
_bearer = HTTPBearer(auto_error=False, description="the metrics token (http.metrics_token_file)")


def _token_matches(expected: str | None,
                   credentials: HTTPAuthorizationCredentials | None) -> bool:
    if expected is None or credentials is None or credentials.scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(credentials.credentials.encode(), expected.encode())


@router.get("/metrics", tags=["health"], response_class=Response)
def metrics(
    request: Request, context: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Response:
    """Prometheus metrics of this server process: on the local port, or with the metrics token."""
    if context.metrics is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "metrics are not served by this process")
    if not request.scope.get(LOCAL_SCOPE_KEY) and not _token_matches(context.metrics_token,
                                                                      credentials):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "the metrics token is needed here (or scrape the local-only port)",
                            headers={"WWW-Authenticate": "Bearer"})
    return Response(context.metrics(), media_type=METRICS_MEDIA_TYPE,
                    headers={"Cache-Control": "no-store"})
