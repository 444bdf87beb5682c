"""HTTP hardening as one pure ASGI layer around the whole app: request body limits per route
and the security headers on every response.

Body limits: a declared Content-Length beyond the route's limit is answered 413 before a byte
of the body is read; a chunked (or lying) body is counted as it streams and answered 413 as soon
as it passes the limit, the rest never read. FastAPI would otherwise read a 50 MB login body
into memory before deciding anything.

Headers: a Content-Security-Policy with no inline script, no eval and no framing (the page is
one HTML file, a script and a style sheet, all served by the server), nosniff, no referrer (a
signed link's query must not leak to another site), the camera for this origin only, and HSTS
when the request came over HTTPS (directly, or through a trusted proxy's X-Forwarded-Proto).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from ..counters import Counters

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "connect-src 'self' wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
       "object-src 'none'")
HSTS = "max-age=31536000"  # a year; no includeSubDomains: the estate's other hosts are not ours
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(self), microphone=(), geolocation=(), payment=()"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


@dataclass(frozen=True)
class BodyLimits:
    """Bytes a request body may have: ``default`` for every route (JSON), and larger limits
    for the routes that take files, matched on the path."""

    default: int
    larger: tuple[tuple[re.Pattern[str], int], ...] = ()

    @classmethod
    def for_server(cls, max_body_kb: int, max_import_mb: int,
                   max_plan_bytes: int | None = None, max_photo_upload: int = 0) -> BodyLimits:
        imports = re.compile(r"^/api/v1/communities/[^/]+/credentials/import$")
        # A gateway's whole configuration (checked again against its own bound on the way).
        configs = re.compile(r"^/api/v1/gateways/[^/]+/config$")
        larger = [(imports, max_import_mb * 2**20), (configs, max_import_mb * 2**20)]
        if max_plan_bytes is not None:  # a site plan image, checked again by the route
            larger.append((re.compile(r"^/api/v1/plans/[^/]+/image$"), max_plan_bytes))
        if max_photo_upload:  # one upload request: the photos of an incident at most
            larger.append((re.compile(r"^/api/v1/incidents/[^/]+/photos$"), max_photo_upload))
        return cls(max_body_kb * 1024, tuple(larger))

    def of(self, path: str) -> int:
        for pattern, limit in self.larger:
            if pattern.match(path):
                return limit
        return self.default


def csp_with_images_from(sources: list[str]) -> str:
    """The policy with more origins images may come from (an offline map tile server)."""
    return CSP.replace("img-src 'self'", " ".join(["img-src 'self'", *sources]), 1)


class Hardening:
    """Wraps the ASGI app; ``counters`` counts the refusals (``http.refused.body_too_large``);
    ``img_sources``: origins the page may show images from besides its own."""

    def __init__(self, app: ASGIApp, limits: BodyLimits, counters: Counters | None = None,
                 img_sources: list[str] | None = None) -> None:
        self.app = app
        self.limits = limits
        self.counters = counters
        self.headers = SECURITY_HEADERS if not img_sources else (
            (b"content-security-policy", csp_with_images_from(img_sources).encode()),
            *SECURITY_HEADERS[1:])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.of(scope["path"])
        declared = _content_length(scope)
        secure = scope.get("scheme") == "https"
        if declared is not None and declared > limit:
            await self._too_large(send, limit, secure)
            return
        state = _Exchange()

        async def guarded_send(message: Message) -> None:
            if state.refused:
                return  # the 413 is out; what the app still says goes nowhere
            if message["type"] == "http.response.start":
                state.started = True
                message["headers"] = _with_security_headers(message.get("headers", []), secure,
                                                            self.headers)
            await send(message)

        async def counted_receive() -> Message:
            if state.refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                state.received += len(message.get("body", b""))
                if state.received > limit:
                    if not state.started:
                        await self._too_large(send, limit, secure)
                    state.refused = True
                    return {"type": "http.disconnect"}  # the app stops reading
            return message

        await self.app(scope, counted_receive, guarded_send)

    async def _too_large(self, send: Send, limit: int, secure: bool) -> None:
        if self.counters is not None:
            self.counters.inc("http.refused.body_too_large")
        body = (f'{{"detail":"请求体超过 {limit} 字节的上限 / request body larger than the '
                f'{limit}-byte limit of this route"}}').encode()
        headers = [(b"content-type", b"application/json; charset=utf-8"),
                   (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413,
                    "headers": _with_security_headers(headers, secure, self.headers)})
        await send({"type": "http.response.body", "body": body})


@dataclass
class _Exchange:
    received: int = 0
    started: bool = False
    refused: bool = False


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _with_security_headers(headers: Any, secure: bool,
                           security: tuple[tuple[bytes, bytes], ...] = SECURITY_HEADERS,
                           ) -> list[tuple[bytes, bytes]]:
    out = [(bytes(k), bytes(v)) for k, v in headers]
    present = {k.lower() for k, _ in out}
    extra = security + (((b"strict-transport-security", HSTS.encode()),) if secure else ())
    out += [(k, v) for k, v in extra if k not in present]
    return out
