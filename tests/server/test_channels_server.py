"""The running server (real broker, InfluxDB, SQLite, HTTP): a gateway's incident is paged by
DingTalk, WeCom, Feishu and e-mail to the vendors' stand-ins; "send a test message" answers
with each vendor's verdict, from the API (control only) and from the CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import channels_support
import httpx
import pytest
from conftest import ServerFactory
from server_helpers import EdgePublisher, async_wait_until
from test_cli import run_cli

from gridsense_devtools.community import REGISTRY_YAML
from gridsense_devtools.standins.server import VendorStandins
from gridsense_devtools.standins.smtp import SmtpStandin

standins = channels_support.standins
smtp = channels_support.smtp

CONTACTS = """\
    contacts:
      wecom: wechat://ww7c1d:app-secret@1000002/ZhangWei
      email: email://zhangwei@example.test
"""
ROBOTS = """\
            contacts:
              dingtalk: dingtalk://SEC0f3a9@tok-g01?keyword=告警
              feishu: feishu://fs-secret@hook-g01
"""


def _lifecycle(standins: VendorStandins, smtp: SmtpStandin, ca_file: Path) -> str:
    base = standins.base
    return f"""\
lifecycle:
  public_url: https://gridsense.test
  policies:
    p:
      steps:
        - after_s: 0
          notify: [workers]
          channels: [app, wecom, email, "group:dingtalk", "group:feishu"]
  vendors:
    dingtalk: {{base_url: "{base}"}}
    wecom: {{base_url: "{base}"}}
    feishu: {{base_url: "{base}"}}
    email: {{host: 127.0.0.1, port: {smtp.port}, ca_file: "{ca_file}"}}
"""


@pytest.fixture
def with_contacts(registry_file: Path) -> Path:
    """张伟 with WeCom and e-mail, 第一网格 with a DingTalk and a Feishu robot."""
    registry_file.write_text(
        REGISTRY_YAML.replace("    grids: [g01]\n    password: demo\n",
                              f"    grids: [g01]\n    password: demo\n{CONTACTS}")
        .replace("            name: 第一网格\n", f"            name: 第一网格\n{ROBOTS}"),
        encoding="utf-8")
    return registry_file


async def test_an_incident_leaves_the_running_server_by_every_vendor(
    tmp_path: Path, start_server: ServerFactory, edge: EdgePublisher, with_contacts: Path,
    standins: VendorStandins, smtp: tuple[SmtpStandin, Path],
) -> None:
    server, ca_file = smtp
    ding = standins.dingtalk.robot("tok-g01", secret="SEC0f3a9", keywords=("告警",))
    bot = standins.feishu.bot("hook-g01", secret="fs-secret")
    app = standins.wecom.app("ww7c1d", "app-secret", 1000002)
    running = await start_server(extra_yaml=_lifecycle(standins, server, ca_file))

    edge.publish(edge.incident("gw-01.boiler", value=72.5))
    await async_wait_until(lambda: (len(ding.received), len(bot.received), len(app.received),
                                    len(server.messages)) == (1, 1, 1, 1), 60,
                           "a page at each vendor")
    texts = [ding.received[0]["markdown"]["text"], app.received[0]["markdown"]["content"],
             server.messages[0][1].get_content(),
             json.dumps(bot.received[0]["card"], ensure_ascii=False)]
    for text in texts:
        assert "1号楼锅炉房" in text and "1号楼 B1" in text
        assert "读数 72.5 °C，阈值 60 °C" in text
        assert "https://gridsense.test/link/" in text
    assert (ding.refused, bot.refused, app.refused) == ([], [], [])

    assert running.http_url is not None
    async with httpx.AsyncClient(base_url=running.http_url, trust_env=False,
                                 timeout=30) as http:
        async def token(user: str, password: str) -> str:
            reply = await http.post("/api/v1/auth/token",
                                    json={"username": user, "password": password})
            return str(reply.json()["access_token"])

        control = {"Authorization": f"Bearer {await token('control', 'ctl')}"}
        answer = await http.post("/api/v1/notify/test", headers=control,
                                 json={"who": "worker-g01"})
        assert answer.status_code == 200, answer.text
        assert {(a["channel"], a["status"]) for a in answer.json()} == {
            ("wecom", "sent"), ("email", "sent")}
        assert "ww7c" not in answer.text and "app-secret" not in answer.text
        assert "【测试】" in app.received[-1]["markdown"]["content"]

        bot.secret = "rotated"  # the bot's secret was changed in Feishu, not in gridsense
        [refused] = (await http.post("/api/v1/notify/test", headers=control,
                                     json={"who": "g01", "channel": "feishu"})).json()
        assert (refused["status"], refused["code"]) == ("bad_config", "19021")

        worker = {"Authorization": f"Bearer {await token('worker-g01', 'demo')}"}
        denied = await http.post("/api/v1/notify/test", headers=worker, json={"who": "g01"})
        assert denied.status_code == 403
        unknown = await http.post("/api/v1/notify/test", headers=control,
                                  json={"who": "nobody"})
        assert unknown.status_code == 404 and "nobody" in unknown.json()["detail"]

    config = str(tmp_path / "server.yaml")
    result = await asyncio.to_thread(run_cli, "notify", "test", "grid:g01", "--channel",
                                     "dingtalk", "--config", config, "--json")
    assert result.returncode == 0, result.stderr
    [line] = json.loads(result.stdout)["results"]
    assert (line["vendor"], line["status"], line["code"]) == ("dingtalk", "sent", "0")
    assert "【测试】" in ding.received[-1]["markdown"]["text"]
    refused_cli = await asyncio.to_thread(run_cli, "notify", "test", "g01", "--channel",
                                          "feishu", "--config", config)
    assert refused_cli.returncode == 1
    assert "feishu 19021: sign match fail" in refused_cli.stdout
    missing = await asyncio.to_thread(run_cli, "notify", "test", "worker-g01", "--channel",
                                      "sms", "--config", config)
    assert missing.returncode == 2 and "has no channel sms" in missing.stderr
