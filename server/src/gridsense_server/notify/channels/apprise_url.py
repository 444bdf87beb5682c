"""Every other scheme goes to apprise (``json://``, ``mailto://``, ``tgram://`` …). apprise
only says yes or no, so a refusal is a retry and the delivery log's attempts bound it."""

from __future__ import annotations

from typing import ClassVar

from .. import apprise_channel
from ..messages import Message
from . import FALLBACK, register
from .base import Outcome, Settings


@register(FALLBACK)
class AppriseUrl:
    name: ClassVar[str] = "apprise"
    Settings = Settings

    def __init__(self, settings: Settings) -> None:
        pass

    def close(self) -> None:
        pass

    def send(self, target: str, message: Message) -> Outcome:
        body = message.text().partition("\n")[2]
        error = apprise_channel.send(target, message.title, body)
        return Outcome("sent", self.name) if error is None else Outcome("retry", self.name,
                                                                         "", error)
