"""``WS /api/v1/stream?token=...``: incident changes pushed live, only for the caller's grids.

A bad or missing token closes the socket with code 4401 (after accepting it: a close before
the handshake would reach the browser as a bare HTTP 403 with no code to act on).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from ..live.hub import Subscription
from ..logs import kv
from .context import ApiContext
from .deps import viewer_for_token

log = logging.getLogger(__name__)
router = APIRouter()

CLOSE_UNAUTHORIZED = 4401


@router.websocket("/api/v1/stream")
async def stream(websocket: WebSocket, token: str | None = None) -> None:
    context: ApiContext = websocket.app.state.context
    viewer = await asyncio.to_thread(viewer_for_token, context, token)
    await websocket.accept()
    if viewer is None:
        context.counters.inc("api.stream_unauthorized")
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason="invalid or missing token")
        return
    subscription = context.hub.subscribe(viewer)
    log.info(kv("stream_opened", user=viewer.username, subscription=subscription.id))
    sender = asyncio.create_task(_send(websocket, subscription))
    receiver = asyncio.create_task(_until_disconnect(websocket))
    try:
        await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, receiver):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task
        context.hub.unsubscribe(subscription)
        log.info(kv("stream_closed", user=viewer.username, subscription=subscription.id,
                    dropped=subscription.dropped))


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
