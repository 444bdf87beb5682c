"""WeCom (企业微信): application messages and group robots.

``GET /cgi-bin/gettoken?corpid&corpsecret`` hands out an ``access_token`` with
``expires_in``; ``POST /cgi-bin/message/send?access_token`` takes ``touser``, ``msgtype`` and
the app's ``agentid``; ``POST /cgi-bin/webhook/send?key`` is a group robot. Answers HTTP 200
with ``errcode``: 40001 bad secret, 40013 bad corp id, 40014 unknown token, 42001 token
expired, 40056 wrong agent id, 45009 over the rate limit, 93000 unknown robot key.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .limits import Inbox, MinuteLimit

OK = {"errcode": 0, "errmsg": "ok"}
BAD_SECRET = {"errcode": 40001, "errmsg": "invalid credential"}
BAD_CORP = {"errcode": 40013, "errmsg": "invalid corpid"}
BAD_TOKEN = {"errcode": 40014, "errmsg": "invalid access_token"}
EXPIRED = {"errcode": 42001, "errmsg": "access_token expired"}
BAD_AGENT = {"errcode": 40056, "errmsg": "invalid agentid"}
LIMITED = {"errcode": 45009, "errmsg": "api freq out of limit"}
BAD_KEY = {"errcode": 93000, "errmsg": "invalid webhook url"}
BAD_BODY = {"errcode": 40008, "errmsg": "invalid message type"}
TOKEN_TTL_S = 7200


@dataclass
class WeComApp(Inbox):
    corp_id: str = ""
    secret: str = ""
    agent_id: int = 0
    tokens_issued: int = 0
    limit: MinuteLimit = field(default_factory=lambda: MinuteLimit(600, 60.0))


@dataclass
class WeComRobot(Inbox):
    limit: MinuteLimit = field(default_factory=MinuteLimit)


def _shaped(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get(str(body.get("msgtype"))), dict)


class WeComStandin:
    def __init__(self) -> None:
        self.apps: dict[tuple[str, str], WeComApp] = {}
        self.robots: dict[str, WeComRobot] = {}
        self._tokens: dict[str, tuple[WeComApp, bool]] = {}  # token -> (app, expired)

    def app(self, corp_id: str, secret: str, agent_id: int) -> WeComApp:
        app = WeComApp(corp_id=corp_id, secret=secret, agent_id=agent_id)
        self.apps[(corp_id, secret)] = app
        return app

    def robot(self, key: str, *, per_min: int = 20) -> WeComRobot:
        robot = WeComRobot(limit=MinuteLimit(per_min))
        self.robots[key] = robot
        return robot

    def expire_tokens(self) -> None:
        """Every token handed out so far is now past its ``expires_in``."""
        self._tokens = {t: (app, True) for t, (app, _) in self._tokens.items()}

    def forget_tokens(self) -> None:
        """As if WeCom had revoked every token (a new secret, say): they become unknown."""
        self._tokens.clear()

    def routes(self) -> list[Route]:
        return [Route("/cgi-bin/gettoken", self._gettoken, methods=["GET"]),
                Route("/cgi-bin/message/send", self._message, methods=["POST"]),
                Route("/cgi-bin/webhook/send", self._webhook, methods=["POST"])]

    async def _gettoken(self, request: Request) -> JSONResponse:
        corp_id = request.query_params.get("corpid", "")
        app = self.apps.get((corp_id, request.query_params.get("corpsecret", "")))
        if app is None:
            known = any(c == corp_id for c, _ in self.apps)
            return JSONResponse(BAD_SECRET if known else BAD_CORP)
        token = secrets.token_urlsafe(24)
        self._tokens[token] = (app, False)
        app.tokens_issued += 1
        return JSONResponse({**OK, "access_token": token, "expires_in": TOKEN_TTL_S})

    async def _message(self, request: Request) -> JSONResponse:
        held = self._tokens.get(request.query_params.get("access_token", ""))
        if held is None:
            return JSONResponse(BAD_TOKEN)
        app, expired = held
        body = await _json(request)
        answer = self._check_message(app, expired, body)
        (app.received if answer is OK else app.refused).append(body or {})
        return JSONResponse({**answer, "msgid": secrets.token_hex(8)} if answer is OK
                            else answer)

    @staticmethod
    def _check_message(app: WeComApp, expired: bool, body: Any) -> dict[str, Any]:
        if app.forced:
            return app.forced.popleft()
        if expired:
            return EXPIRED
        if not _shaped(body) or not body.get("touser"):
            return BAD_BODY
        if body.get("agentid") != app.agent_id:
            return BAD_AGENT
        return OK if app.limit.admit() else LIMITED

    async def _webhook(self, request: Request) -> JSONResponse:
        robot = self.robots.get(request.query_params.get("key", ""))
        if robot is None:
            return JSONResponse(BAD_KEY)
        body = await _json(request)
        if robot.forced:
            answer = robot.forced.popleft()
        elif not _shaped(body):
            answer = BAD_BODY
        else:
            answer = OK if robot.limit.admit() else LIMITED
        (robot.received if answer is OK else robot.refused).append(body or {})
        return JSONResponse(answer)


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        return None
