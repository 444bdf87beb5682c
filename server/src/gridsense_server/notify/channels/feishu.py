"""Feishu custom bots (飞书自定义机器人): ``feishu://[secret@]token``, sent as a card.

Our own sender: apprise's Feishu plugin cannot sign, so a bot with 签名校验 on refuses it.
The signature is base64(HMAC-SHA256 keyed by ``"{timestamp}\\n{secret}"`` over nothing),
with the timestamp in seconds, both in the JSON body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import AnyHttpUrl

from ..messages import LINK_LABEL, Message
from . import register
from .base import HttpChannel, Outcome, VendorSettings

COLOURS = {"critical": "red", "major": "orange", "minor": "yellow", "info": "blue"}


def sign(secret: str, timestamp: int) -> str:
    digest = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def card(message: Message) -> dict[str, Any]:
    elements: list[dict[str, Any]] = [{
        "tag": "div",
        "fields": [{"is_short": label not in ("情况", "同时通知"),
                    "text": {"tag": "lark_md", "content": f"**{label}**\n{value}"}}
                   for label, value in message.fields],
    }]
    if message.link:
        elements.append({"tag": "action", "actions": [{
            "tag": "button", "type": "primary", "url": message.link,
            "text": {"tag": "plain_text", "content": LINK_LABEL}}]})
    return {"config": {"wide_screen_mode": True},
            "header": {"title": {"tag": "plain_text", "content": message.title},
                       "template": COLOURS.get(message.severity, "blue")},
            "elements": elements}


@register("feishu")
class Feishu(HttpChannel):
    name: ClassVar[str] = "feishu"
    RATE_LIMITED = frozenset({11232, 99991400})
    # 19001 unknown hook, 19021 signature, 19022 IP whitelist, 19024 keyword.
    BAD_CONFIG = frozenset({19001, 19021, 19022, 19024})

    class Settings(VendorSettings):
        base_url: AnyHttpUrl = AnyHttpUrl("https://open.feishu.cn")

    def send(self, target: str, message: Message) -> Outcome:
        secret, _, token = urlsplit(target).netloc.rpartition("@")
        body: dict[str, Any] = {"msg_type": "interactive", "card": card(message)}
        if secret:
            timestamp = int(time.time())
            body |= {"timestamp": str(timestamp), "sign": sign(secret, timestamp)}
        answer = self.call("POST", f"{self.base}/open-apis/bot/v2/hook/{token}", json=body)
        if isinstance(answer, Outcome):
            return answer
        # Newer answers say ``code``/``msg``; older hooks ``StatusCode``/``StatusMessage``.
        return self.judge(int(answer.get("code", answer.get("StatusCode", -1))),
                          str(answer.get("msg", answer.get("StatusMessage", ""))))
