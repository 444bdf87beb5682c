"""DingTalk custom robot (自定义机器人): ``POST /robot/send?access_token=…[&timestamp&sign]``.

Checks what DingTalk checks: the token, the signature when the robot has a signing secret
(HMAC-SHA256 of ``"{timestamp_ms}\\n{secret}"`` keyed by the secret, base64, within an hour),
the keywords when it has some, and 20 messages a minute. Answers HTTP 200 with ``errcode``:
300001 unknown token, 310000 signature or keyword refused, 130101 too fast.
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

OK = {"errcode": 0, "errmsg": "ok"}
BAD_TOKEN = {"errcode": 300001, "errmsg": "token is not exist"}
SIGN_MISMATCH = {"errcode": 310000, "errmsg": "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"}
NO_KEYWORD = {"errcode": 310000, "errmsg": "keywords not in content, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"}
TOO_FAST = {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}
BAD_BODY = {"errcode": 40035, "errmsg": "缺少参数 json"}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(),
                      hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass
class DingTalkRobot(Inbox):
    secret: str | None = None
    keywords: tuple[str, ...] = ()
    limit: MinuteLimit = field(default_factory=MinuteLimit)


class DingTalkStandin:
    def __init__(self) -> None:
        self.robots: dict[str, DingTalkRobot] = {}

    def robot(self, token: str, *, secret: str | None = None,
              keywords: tuple[str, ...] = (), per_min: int = 20) -> DingTalkRobot:
        robot = DingTalkRobot(secret=secret, keywords=keywords, limit=MinuteLimit(per_min))
        self.robots[token] = robot
        return robot

    def routes(self) -> list[Route]:
        return [Route("/robot/send", self._send, methods=["POST"])]

    async def _send(self, request: Request) -> JSONResponse:
        robot = self.robots.get(request.query_params.get("access_token", ""))
        if robot is None:
            return JSONResponse(BAD_TOKEN)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse(BAD_BODY)
        answer = self._check(robot, request, body)
        (robot.received if answer is OK else robot.refused).append(body)
        return JSONResponse(answer)

    @staticmethod
    def _check(robot: DingTalkRobot, request: Request, body: Any) -> dict[str, Any]:
        if robot.forced:
            return robot.forced.popleft()
        if robot.secret is not None:
            try:
                timestamp = int(request.query_params.get("timestamp", ""))
            except ValueError:
                return SIGN_MISMATCH
            given = request.query_params.get("sign", "")
            if (abs(time.time() * 1000 - timestamp) > 3600_000
                    or not hmac.compare_digest(given, dingtalk_sign(robot.secret, timestamp))):
                return SIGN_MISMATCH
        if not isinstance(body, dict) or body.get("msgtype") not in body:
            return BAD_BODY
        if robot.keywords and not any(k in json.dumps(body, ensure_ascii=False)
                                      for k in robot.keywords):
            return NO_KEYWORD
        return OK if robot.limit.admit() else TOO_FAST
