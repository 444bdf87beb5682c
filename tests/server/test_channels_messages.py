"""What a page says and how a channel is added: the digest stays bounded and puts the most
severe first; a new channel is one module registered by its scheme."""

from __future__ import annotations

from typing import ClassVar

from gridsense_server.notify.channels import ChannelSet, Outcome, register
from gridsense_server.notify.channels.base import Settings
from gridsense_server.notify.channels.feishu import card
from gridsense_server.notify.messages import DIGEST_ITEMS, Message, digest


def _page(n: int, severity: str) -> Message:
    return Message(f"【{severity}】第 {n} 条", severity, (("地点", f"点位 {n}"),),
                   f"https://gridsense.test/link/{n}")


def test_a_digest_is_bounded_and_puts_the_most_severe_first() -> None:
    pages = [_page(n, "minor") for n in range(30)] + [_page(99, "critical")]
    folded = digest(pages)
    assert folded.title == "【汇总】31 条告警待处理"
    assert folded.severity == "critical"
    assert folded.fields[0][1].startswith("【critical】第 99 条")
    assert len(folded.fields) == DIGEST_ITEMS + 1
    assert folded.fields[-1] == ("…", f"另有 {31 - DIGEST_ITEMS} 条，请在 gridsense 查看")
    assert len(folded.markdown().encode()) < 4096  # WeCom's markdown limit


def test_renderings_carry_the_same_facts() -> None:
    page = Message("【紧急】新告警：水泵房 温度过高", "critical",
                   (("地点", "水泵房"), ("期限", "11-25 11:05 前受理")),
                   "https://gridsense.test/link/x")
    assert page.text().splitlines() == ["【紧急】新告警：水泵房 温度过高", "地点：水泵房",
                                        "期限：11-25 11:05 前受理", "查看并处理：",
                                        "https://gridsense.test/link/x"]
    assert "**期限**：11-25 11:05 前受理" in page.markdown()
    assert "[查看并处理](https://gridsense.test/link/x)" in page.markdown()
    feishu = card(page)
    assert feishu["header"]["template"] == "red"
    assert feishu["elements"][1]["actions"][0]["url"] == "https://gridsense.test/link/x"


class _Echo:
    """A channel as a new module would write it: a scheme, settings, send."""

    name: ClassVar[str] = "echo"

    class Settings(Settings):
        prefix: str = ""

    def __init__(self, settings: Settings) -> None:
        self.prefix = settings.prefix  # type: ignore[attr-defined]
        self.sent: list[str] = []

    def send(self, target: str, message: Message) -> Outcome:
        self.sent.append(f"{self.prefix}{target} {message.title}")
        return Outcome("sent", self.name)

    def close(self) -> None:
        pass


def test_a_new_channel_is_one_registered_class() -> None:
    register("echo")(_Echo)  # type: ignore[arg-type]
    channels = ChannelSet({"echo": {"prefix": "> "}})
    assert channels.send("echo://room", _page(1, "major")).sent
    echo = channels.for_target("echo://room")
    assert isinstance(echo, _Echo) and echo.sent == ["> echo://room 【major】第 1 条"]
    assert channels.for_target("json://127.0.0.1/hook").name == "apprise"
