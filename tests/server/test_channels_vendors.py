"""A page for a new incident leaves the server by DingTalk, WeCom (application and group
robot), Feishu and e-mail, and each vendor's stand-in checks it as the vendor would:
signatures, the access-token flow, the message's shape; the words are Chinese and name the
place, the grid, the location, what happened, the deadline, who else was paged, the link."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import channels_support
import pytest
from channels_support import Rig, lifecycle
from sqlalchemy.orm import Session, sessionmaker

from gridsense_devtools.standins.server import VendorStandins
from gridsense_devtools.standins.smtp import SmtpStandin
from gridsense_server.notify.channels import ChannelConfigError, ChannelSet

FACTS = ("【严重】新告警", "1号楼锅炉房", "温度过高", "读数 70", "第一网格 1-3号楼",
         "1号楼 B1 设备间", "11:05 前受理")

factory = channels_support.factory
standins = channels_support.standins
smtp = channels_support.smtp


def _readable(text: str, incident_id: str, others: str = "同时通知：无") -> None:
    """``others``: a robot's page names the person paged beside it; a person's own page
    names nobody else (the grid has one worker)."""
    for fact in (*FACTS, others):
        assert fact in text, f"{fact!r} missing from {text!r}"
    assert f"https://gridsense.test/link/{incident_id}?u=" in text


async def test_dingtalk_robot_page_is_signed_and_carries_the_keyword(
    factory: sessionmaker[Session], standins: VendorStandins
) -> None:
    robot = standins.dingtalk.robot("tok-g01", secret="SEC0f3a9", keywords=("告警",))
    rig = Rig(factory, lifecycle(standins, ["app", "group:dingtalk"]),
              robots={"dingtalk": "dingtalk://SEC0f3a9@tok-g01?keyword=告警"})
    [incident_id] = rig.open()
    await rig.sender.process_due()
    assert robot.refused == []
    [body] = robot.received
    assert body["msgtype"] == "markdown"
    _readable(body["markdown"]["text"], incident_id, "**同时通知**：张伟")
    assert [(d.status, d.error) for d in rig.deliveries()] == [("sent", None)]


async def test_wecom_application_message_fetches_a_token_once_and_again_when_expired(
    factory: sessionmaker[Session], standins: VendorStandins
) -> None:
    app = standins.wecom.app("ww7c1d", "app-secret", 1000002)
    rig = Rig(factory, lifecycle(standins, ["app", "wecom"]),
              contacts={"wecom": "wechat://ww7c1d:app-secret@1000002/ZhangWei"})
    [incident_id] = rig.open()
    await rig.sender.process_due()
    [body] = app.received
    assert (body["touser"], body["agentid"], body["msgtype"]) == ("ZhangWei", 1000002,
                                                                  "markdown")
    _readable(body["markdown"]["content"], incident_id, "**同时通知**：无")

    rig.open(first_seq=2)
    await rig.sender.process_due()
    assert (len(app.received), app.tokens_issued) == (2, 1)  # the token was kept

    standins.wecom.expire_tokens()  # 42001 on the next send: fetched again, sent once
    rig.open(first_seq=3)
    await rig.sender.process_due()
    assert (len(app.received), app.tokens_issued) == (3, 2)
    assert [r["touser"] for r in app.refused] == ["ZhangWei"]
    assert [d.status for d in rig.deliveries()] == ["sent"] * 3


async def test_wecom_group_robot_page(factory: sessionmaker[Session],
                                      standins: VendorStandins) -> None:
    robot = standins.wecom.robot("5c1e-key")
    rig = Rig(factory, lifecycle(standins, ["app", "group:wecom"]),
              robots={"wecom": "wecombot://5c1e-key"})
    [incident_id] = rig.open()
    await rig.sender.process_due()
    [body] = robot.received
    assert body["msgtype"] == "markdown"
    _readable(body["markdown"]["content"], incident_id, "**同时通知**：张伟")


async def test_feishu_page_is_a_signed_card(factory: sessionmaker[Session],
                                            standins: VendorStandins) -> None:
    bot = standins.feishu.bot("hook-g01", secret="fs-secret")
    rig = Rig(factory, lifecycle(standins, ["app", "group:feishu"]),
              robots={"feishu": "feishu://fs-secret@hook-g01"})
    [incident_id] = rig.open()
    await rig.sender.process_due()
    assert bot.refused == []
    [body] = bot.received
    assert body["msg_type"] == "interactive"
    card: dict[str, Any] = body["card"]
    assert card["header"]["template"] == "orange"  # major
    fields = "\n".join(f["text"]["content"] for f in card["elements"][0]["fields"])
    [button] = card["elements"][1]["actions"]
    _readable(f"{card['header']['title']['content']}\n{fields}\n{button['url']}", incident_id,
              "**同时通知**\n张伟")
    assert button["text"]["content"] == "查看并处理"


async def test_email_page_goes_over_starttls_with_a_subject_and_a_plain_body(
    factory: sessionmaker[Session], standins: VendorStandins,
    smtp: tuple[SmtpStandin, Path],
) -> None:
    server, ca_file = smtp
    rig = Rig(factory, lifecycle(standins, ["app", "email"], email=server.settings(ca_file)),
              contacts={"email": "email://zhangwei@example.test"})
    [incident_id] = rig.open()
    await rig.sender.process_due()
    [(envelope, mail)] = server.messages
    assert server.handler.tls_seen == [True]
    assert envelope.rcpt_tos == ["zhangwei@example.test"]
    assert "1号楼锅炉房" in mail["Subject"] and "严重" in mail["Subject"]
    assert mail.get_content_type() == "text/plain"
    _readable(mail.get_content(), incident_id)


def test_a_vendor_setting_nobody_knows_is_named() -> None:
    with pytest.raises(ChannelConfigError, match=r"lifecycle.vendors.dingtalkk: unknown vendor"):
        ChannelSet({"dingtalkk": {}})
    with pytest.raises(ChannelConfigError, match=r"lifecycle.vendors.dingtalk.base_url: .*URL"):
        ChannelSet({"dingtalk": {"base_url": "not a url"}})
