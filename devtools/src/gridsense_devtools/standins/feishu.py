"""Feishu custom bot (自定义机器人): ``POST /open-apis/bot/v2/hook/{token}``.

With a signing secret the body carries ``timestamp`` (seconds) and ``sign``: base64 of an
HMAC-SHA256 *keyed by* ``"{timestamp}\\n{secret}"`` over an empty message, within an hour.
Answers HTTP 200 with ``code``: 19001 unknown hook, 19021 signature refused, 9499 bad request,
11232 frequency limited (100 a minute, 5 a second per bot).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .limits import Inbox, MinuteLimit

OK = {"code": 0, "data": {}, "msg": "success"}
BAD_HOOK = {"code": 19001, "data": {},
            "msg": "param invalid: incoming webhook access token invalid"}
SIGN_MISMATCH = {"code": 19021, "data": {},
                 "msg": "sign match fail or timestamp is not within one hour from current time"}
BAD_REQUEST = {"code": 9499, "data": {}, "msg": "Bad Request"}
LIMITED = {"code": 11232, "data": {},
           "msg": "frequency limited psm[lark.oapi.app_platform_runtime]"}
MSG_TYPES = {"text": "content", "post": "content", "interactive": "card"}


def feishu_sign(secret: str, timestamp: int) -> str:
    digest = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass
class FeishuBot(Inbox):
    secret: str | None = None
    limit: MinuteLimit = field(default_factory=lambda: MinuteLimit(100, 60.0))


class FeishuStandin:
    def __init__(self) -> None:
        self.bots: dict[str, FeishuBot] = {}

    def bot(self, token: str, *, secret: str | None = None, per_min: int = 100) -> FeishuBot:
        bot = FeishuBot(secret=secret, limit=MinuteLimit(per_min, 60.0))
        self.bots[token] = bot
        return bot

    def routes(self) -> list[Route]:
        return [Route("/open-apis/bot/v2/hook/{token}", self._hook, methods=["POST"])]

    async def _hook(self, request: Request) -> JSONResponse:
        bot = self.bots.get(request.path_params["token"])
        if bot is None:
            return JSONResponse(BAD_HOOK)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse(BAD_REQUEST)
        answer = self._check(bot, body)
        (bot.received if answer is OK else bot.refused).append(body)
        return JSONResponse(answer)

    @staticmethod
    def _check(bot: FeishuBot, body: Any) -> dict[str, Any]:
        if bot.forced:
            return bot.forced.popleft()
        if not isinstance(body, dict):
            return BAD_REQUEST
        if bot.secret is not None:
            try:
                timestamp = int(body.get("timestamp", ""))
            except (TypeError, ValueError):
                return SIGN_MISMATCH
            if (abs(time.time() - timestamp) > 3600
                    or not hmac.compare_digest(str(body.get("sign", "")),
                                               feishu_sign(bot.secret, timestamp))):
                return SIGN_MISMATCH
        field_name = MSG_TYPES.get(str(body.get("msg_type")))
        if field_name is None or not isinstance(body.get(field_name), dict):
            return BAD_REQUEST
        return OK if bot.limit.admit() else LIMITED
