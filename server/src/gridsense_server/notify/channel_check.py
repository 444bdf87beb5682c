""""Send a test message": to one person's channels or one grid's robots, now, outside the
delivery log, with each vendor's answer — for installers and admins setting channels up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from ..db.models import Grid, Staff
from .channels import ChannelSet
from .messages import Message


class UnknownAddressee(LookupError):
    """No such person or grid, or none of the named channel."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    addressee: str
    channel: str
    target: str  # scheme and host only: tokens and secrets stay out of the answer
    status: str
    vendor: str
    code: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"addressee": self.addressee, "channel": self.channel, "target": self.target,
                "status": self.status, "vendor": self.vendor, "code": self.code,
                "detail": self.detail}


def _contacts(session: Session, who: str) -> tuple[str, dict[str, str]]:
    """``who``: a username, or a grid id (``grid:`` in front optional)."""
    person = None if who.startswith("grid:") else session.get(Staff, who)
    if person is not None:
        return person.name, dict(person.contacts or {})
    grid = session.get(Grid, who.removeprefix("grid:"))
    if grid is not None:
        return f"{grid.name}群", dict(grid.contacts or {})
    raise UnknownAddressee(f"无此人员或网格 (no staff member or grid {who!r})")


def _redacted(target: str) -> str:
    parts = urlsplit(target)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host[:4]}…" if len(host) > 4 else f"{parts.scheme}://…"


def send_test(factory: sessionmaker[Session], channels: ChannelSet, who: str,
              channel: str | None, now: datetime, zone: ZoneInfo) -> list[CheckResult]:
    """Blocking (network): one test message per channel of ``who`` (or only ``channel``)."""
    with factory() as session:
        name, contacts = _contacts(session, who)
    if channel is not None:
        if channel not in contacts:
            have = ", ".join(sorted(contacts)) or "无 (none)"
            raise UnknownAddressee(f"{who} 没有通道 {channel} (has no channel {channel}; "
                                   f"has: {have})")
        contacts = {channel: contacts[channel]}
    if not contacts:
        raise UnknownAddressee(f"{who} 没有登记任何通道 (has no contacts in the registry)")
    results = []
    for name_of_channel, target in sorted(contacts.items()):
        message = Message("【测试】gridsense 通知测试", "info", (
            ("接收", name), ("通道", name_of_channel),
            ("时间", now.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")),
            ("说明", "收到此消息说明通道配置正确，无需处理"),
        ))
        outcome = channels.send(target, message)
        results.append(CheckResult(who, name_of_channel, _redacted(target), outcome.status,
                                   outcome.vendor, outcome.code, outcome.detail))
    return results
