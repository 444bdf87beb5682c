"""WeCom (企业微信): application messages ``wechat://corpid:corpsecret@agentid/user[/user…]``
(the same URL apprise takes) and group robots ``wecombot://key``.

Application messages need an ``access_token`` (``gettoken`` with the corp id and the app's
secret, valid ``expires_in`` seconds): kept per app and fetched again, once, when WeCom
answers 40014 (invalid) or 42001 (expired). Both answer HTTP 200 with ``errcode``.
"""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from pydantic import AnyHttpUrl

from ..messages import Message
from . import register
from .base import HttpChannel, Outcome, VendorSettings

TOKEN_ERRORS = frozenset({40014, 42001})
# A token a little older than WeCom says is fetched again rather than risked.
TOKEN_MARGIN_S = 300.0
MAX_APPS = 256  # token cache bound: one entry per (corp id, secret)


class _WeComSettings(VendorSettings):
    base_url: AnyHttpUrl = AnyHttpUrl("https://qyapi.weixin.qq.com")


@register("wechat", "wecom")
class WeComApp(HttpChannel):
    name: ClassVar[str] = "wecom"
    RATE_LIMITED = frozenset({45009, 45033})
    # 40001 secret, 40013 corp id, 40056 agent id, 40003/81013 user, 60020 IP not trusted.
    BAD_CONFIG = frozenset({40001, 40013, 40056, 40003, 81013, 60020, *TOKEN_ERRORS})
    Settings = _WeComSettings

    def __init__(self, settings: VendorSettings) -> None:
        super().__init__(settings)
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def send(self, target: str, message: Message) -> Outcome:
        parts = urlsplit(target)
        credentials, _, agent = parts.netloc.rpartition("@")
        corp_id, _, secret = credentials.partition(":")
        users = [unquote(u) for u in parts.path.split("/") if u]
        if not (corp_id and secret and agent.isdigit() and users):
            return Outcome("bad_config", self.name, "", "URL must be "
                           "wechat://<corp id>:<secret>@<agent id>/<user id>")
        body = {"touser": "|".join(users), "msgtype": "markdown", "agentid": int(agent),
                "markdown": {"content": message.markdown()}}
        key = (unquote(corp_id), unquote(secret))
        outcome = self._send_with_token(key, body, refresh=False)
        if outcome.code and int(outcome.code) in TOKEN_ERRORS:
            outcome = self._send_with_token(key, body, refresh=True)
        return outcome

    def _send_with_token(self, key: tuple[str, str], body: dict[str, Any],
                         refresh: bool) -> Outcome:
        token = self._token(key, refresh)
        if isinstance(token, Outcome):
            return token
        answer = self.call("POST", f"{self.base}/cgi-bin/message/send",
                           params={"access_token": token}, json=body)
        if isinstance(answer, Outcome):
            return answer
        return self.judge(int(answer.get("errcode", -1)), str(answer.get("errmsg", "")))

    def _token(self, key: tuple[str, str], refresh: bool) -> str | Outcome:
        with self._lock:
            held = self._tokens.get(key)
            if held is not None and not refresh and held[1] > time.monotonic():
                return held[0]
        answer = self.call("GET", f"{self.base}/cgi-bin/gettoken",
                           params={"corpid": key[0], "corpsecret": key[1]})
        if isinstance(answer, Outcome):
            return answer
        token = answer.get("access_token")
        if int(answer.get("errcode", -1)) != 0 or not isinstance(token, str):
            outcome = self.judge(int(answer.get("errcode", -1)), str(answer.get("errmsg", "")))
            return Outcome(outcome.status, self.name, outcome.code,
                           f"gettoken: {outcome.detail}", outcome.retry_after_s)
        expires_in = float(answer.get("expires_in", 7200))
        with self._lock:
            if len(self._tokens) >= MAX_APPS:
                self._tokens.pop(next(iter(self._tokens)))
            self._tokens[key] = (token, time.monotonic() + expires_in - TOKEN_MARGIN_S)
        return token


@register("wecombot")
class WeComRobot(HttpChannel):
    name: ClassVar[str] = "wecombot"
    RATE_LIMITED = frozenset({45009})  # 20 messages a minute per robot
    BAD_CONFIG = frozenset({93000, 93004, 93008})  # unknown key, robot disabled, not in chat
    Settings = _WeComSettings

    def send(self, target: str, message: Message) -> Outcome:
        key = urlsplit(target).netloc
        answer = self.call("POST", f"{self.base}/cgi-bin/webhook/send", params={"key": key},
                           json={"msgtype": "markdown",
                                 "markdown": {"content": message.markdown()}})
        if isinstance(answer, Outcome):
            return answer
        return self.judge(int(answer.get("errcode", -1)), str(answer.get("errmsg", "")))
