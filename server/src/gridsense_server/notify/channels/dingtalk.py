"""DingTalk custom robots (钉钉自定义机器人): ``dingtalk://[secret@]token[?keyword=…]``.

Our own sender, not apprise's: apprise's DingTalk plugin checks only the HTTP status, and
DingTalk answers HTTP 200 with ``errcode`` 130101 (too fast) or 310000 (signature/keyword)
— apprise reports those as sent. Markdown message, signed when the robot has a secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

from pydantic import AnyHttpUrl

from ..messages import Message
from . import register
from .base import HttpChannel, Outcome, VendorSettings


def sign(secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(),
                      hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@register("dingtalk")
class DingTalk(HttpChannel):
    name: ClassVar[str] = "dingtalk"
    RATE_LIMITED = frozenset({130101})  # "send too fast, exceed 20 times per minute"
    # 300001 token unknown, 300002-300004 robot refused or stopped, 310000 signature,
    # keyword or IP whitelist refused: nothing a retry can mend.
    BAD_CONFIG = frozenset({300001, 300002, 300003, 300004, 310000, 400101, 400102})

    class Settings(VendorSettings):
        base_url: AnyHttpUrl = AnyHttpUrl("https://oapi.dingtalk.com")
        # A robot over its 20 a minute is silenced for ten minutes.
        rate_limited_wait_s: float = 600.0

    def send(self, target: str, message: Message) -> Outcome:
        parts = urlsplit(target)
        secret, _, token = parts.netloc.rpartition("@")
        keyword = (parse_qs(parts.query).get("keyword") or [""])[0]
        text = message.markdown()
        if keyword and keyword not in text:
            text = f"{keyword} {text}"
        params: dict[str, str | int] = {"access_token": token}
        if secret:
            timestamp = int(time.time() * 1000)
            params |= {"timestamp": timestamp, "sign": sign(secret, timestamp)}
        body = {"msgtype": "markdown",
                "markdown": {"title": message.title[:64], "text": text}}
        answer = self.call("POST", f"{self.base}/robot/send", params=params, json=body)
        if isinstance(answer, Outcome):
            return answer
        return self.judge(int(answer.get("errcode", -1)), str(answer.get("errmsg", "")))
