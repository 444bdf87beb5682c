"""What the cookie flow needs (``app.state.web_auth``): the session store, the login throttle,
the CSRF secret, trusted proxies and the refusal sink; and the checks built on them.

CSRF: a request authenticated by the cookie that changes anything must carry the session's
synchronizer token in ``X-CSRF-Token`` (the page gets it from ``GET /api/v1/auth/session``, a
read another origin cannot make its browser hand over), and an ``Origin`` header, when the
browser sends one, must be this server's. A bearer token needs neither: no browser attaches
one by itself.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from fastapi import HTTPException, Request, Response, WebSocket, status
from starlette.requests import HTTPConnection

from ..audit import RefusalSink
from ..auth.addresses import Network, client_address
from ..auth.sessions import SessionInfo, SessionStore
from ..auth.throttle import Throttle
from .session_watch import SessionWatch

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
# The page's own timers send this: such a request does not count as the user being active.
BACKGROUND_HEADER = "X-Gridsense-Background"
SECURE_COOKIE = "__Host-gridsense"  # __Host-: Secure, Path=/, no Domain; no subdomain sets it
PLAIN_COOKIE = "gridsense_session"


@dataclass
class WebAuth:
    sessions: SessionStore
    throttle: Throttle
    csrf_secret: bytes
    refusals: RefusalSink
    trusted_proxies: list[Network] = field(default_factory=list)
    cookie_secure: bool = True
    public_url: str | None = None  # an Origin also accepted (the address behind a proxy)
    watch: SessionWatch = field(default_factory=SessionWatch)

    @property
    def cookie_name(self) -> str:
        return SECURE_COOKIE if self.cookie_secure else PLAIN_COOKIE

    def address(self, connection: HTTPConnection) -> str:
        peer = connection.client.host if connection.client is not None else None
        return client_address(peer, connection.headers.get("x-forwarded-for"),
                              self.trusted_proxies)

    def set_cookie(self, response: Response, session_id: str) -> None:
        response.set_cookie(self.cookie_name, session_id, max_age=int(
            self.sessions.config.absolute_s), path="/", secure=self.cookie_secure,
            httponly=True, samesite="strict")

    def clear_cookie(self, response: Response) -> None:
        response.delete_cookie(self.cookie_name, path="/", secure=self.cookie_secure,
                               httponly=True, samesite="strict")

    def session_of(self, connection: HTTPConnection, *, touch: bool) -> SessionInfo | None:
        """Blocking (one small read, maybe a write)."""
        session_id = connection.cookies.get(self.cookie_name)
        if not session_id or len(session_id) > 100:
            return None
        return self.sessions.check(session_id, touch=touch)

    def origin_allowed(self, connection: HTTPConnection) -> bool:
        """No Origin (not a browser's cross-origin request), or one naming this server."""
        origin = connection.headers.get("origin")
        if origin is None:
            return True
        netloc = urlsplit(origin).netloc
        if netloc and netloc == connection.headers.get("host"):
            return True
        return self.public_url is not None and origin.rstrip("/") == _origin(self.public_url)

    def refuse(self, connection: HTTPConnection, actor: str, reason: str) -> HTTPException:
        self.refusals.refuse(actor, "security.refused", connection.url.path,
                             {"reason": reason, "origin": connection.headers.get("origin")},
                             self.address(connection))
        return HTTPException(status.HTTP_403_FORBIDDEN, reason)

    def check_csrf(self, request: Request, info: SessionInfo) -> None:
        if request.method in SAFE_METHODS:
            return
        if not self.origin_allowed(request):
            raise self.refuse(request, info.username,
                              f"cross-site request refused (Origin {request.headers['origin']})")
        sent = request.headers.get(CSRF_HEADER.lower(), "")
        if not hmac.compare_digest(sent.encode(), info.csrf_token(self.csrf_secret).encode()):
            raise self.refuse(request, info.username,
                              f"CSRF token missing or wrong (send {CSRF_HEADER})")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def address_of(connection: HTTPConnection) -> str:
    """The caller's address for the audit log (trusted proxies honoured when configured)."""
    web = getattr(connection.app.state, "web_auth", None)
    if web is not None:
        return web.address(connection)
    return connection.client.host if connection.client is not None else "?"


def web_auth_of(connection: Request | WebSocket) -> WebAuth:
    found = getattr(connection.app.state, "web_auth", None)
    if found is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "sessions not configured")
    return found
