"""``WS /api/v1/stream``: incident changes pushed live, only for the caller's grids.

The web page is recognised by its session cookie (and its Origin must be this server's: a
hostile page's WebSocket would carry the cookie too); scripts pass ``?token=``. A bad or
missing credential closes the socket with code 4401 (after accepting it: a close before the
handshake would reach the browser as a bare HTTP 403 with no code to act on). A cookie stream
closes, again with 4401, when its session ends: rechecked every ``auth.sessions.stream_check_s``
and at once on a logout in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from ..auth.sessions import SessionInfo
from ..live.hub import Subscription
from ..logs import kv
from ..registry.viewers import Viewer, load_viewer
from .context import ApiContext
from .deps import viewer_for_token
from .web_auth import WebAuth

log = logging.getLogger(__name__)
router = APIRouter()

CLOSE_UNAUTHORIZED = 4401


@router.websocket("/api/v1/stream")
async def stream(websocket: WebSocket, token: str | None = None) -> None:
    context: ApiContext = websocket.app.state.context
    web: WebAuth | None = getattr(websocket.app.state, "web_auth", None)
    viewer, session, refused = await asyncio.to_thread(_authenticate, context, web, websocket,
                                                       token)
    await websocket.accept()
    if viewer is None:
        context.counters.inc("api.stream_unauthorized")
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason=refused)
        return
    subscription = context.hub.subscribe(viewer)
    log.info(kv("stream_opened", user=viewer.username, subscription=subscription.id))
    tasks = {asyncio.create_task(_send(websocket, subscription)),
             asyncio.create_task(_until_disconnect(websocket))}
    ended = None
    if web is not None and session is not None:
        ended = asyncio.create_task(_until_session_ends(web, session))
        tasks.add(ended)
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if ended is not None and ended.done() and not ended.cancelled():
            context.counters.inc("api.stream_session_ended")
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await websocket.close(code=CLOSE_UNAUTHORIZED, reason="session ended")
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task
        context.hub.unsubscribe(subscription)
        log.info(kv("stream_closed", user=viewer.username, subscription=subscription.id,
                    dropped=subscription.dropped))


def _authenticate(context: ApiContext, web: WebAuth | None, websocket: WebSocket,
                  token: str | None) -> tuple[Viewer | None, SessionInfo | None, str]:
    """(viewer, the cookie's session or None for a token, why refused). Blocking."""
    if token is not None:
        return viewer_for_token(context, token), None, "invalid or expired token"
    if web is None:
        return None, None, "a token is required"
    if not web.origin_allowed(websocket):
        web.refusals.refuse("?", "security.refused", websocket.url.path,
                            {"reason": "cross-site WebSocket",
                             "origin": websocket.headers.get("origin")}, web.address(websocket))
        return None, None, "cross-site WebSocket refused"
    session = web.session_of(websocket, touch=False)
    if session is None:
        return None, None, "sign in first (no live session)"
    with context.factory() as db:
        return load_viewer(db, session.username), session, "this user no longer exists"


async def _until_session_ends(web: WebAuth, session: SessionInfo) -> None:
    """Returns once the session is no longer live (logout, revocation, idle or absolute end)."""
    wake = web.watch.watch(session.username)
    try:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(web.sessions.config.stream_check_s):
                    await wake.wait()
            wake.clear()
            try:
                live = await asyncio.to_thread(web.sessions.check_hash, session.id_hash)
            except Exception:  # the database is away: keep the stream, check again later
                log.exception(kv("stream_session_check_failed", user=session.username))
                continue
            if live is None:
                return
    finally:
        web.watch.forget(session.username, wake)


async def _send(websocket: WebSocket, subscription: Subscription) -> None:
    while True:
        await websocket.send_json(await subscription.next())


async def _until_disconnect(websocket: WebSocket) -> None:
    # Clients send nothing we need; reading is how a closed connection is noticed.
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
