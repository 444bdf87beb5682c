"""What a page says, in Chinese, once: the formatter. Channels only choose the rendering
(plain text, markdown, a card, a mail) of the same ``Message``."""

from __future__ import annotations

from dataclasses import dataclass

from ..i18n import catalogue

# The page's words come from the same catalogue the web page shows (one wording for a type
# or a severity, wherever a person reads it).
_ZH = catalogue("zh-CN").messages
SEVERITY_ORDER = ("critical", "major", "minor", "info")  # most severe first (info: tests)
LINK_LABEL = "查看并处理"
# A digest lists this many pages at most: vendors cap a message's size (WeCom markdown
# 4096 bytes, DingTalk 20 KB), and a longer list helps nobody on a phone.
DIGEST_ITEMS = 12


def type_zh(incident_type: str) -> str:
    return _ZH["incident_types"].get(incident_type, incident_type)


def severity_zh(severity: str) -> str:
    return _ZH["severities"].get(severity, severity)


def headline(severity: str, why: str, place: str, incident_type: str) -> str:
    """``【严重】新告警：锅炉房 温度过高`` — what a phone shows before it is opened."""
    return f"【{severity_zh(severity)}】{why}：{place} {type_zh(incident_type)}"


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    severity: str  # critical | major | minor | info
    fields: tuple[tuple[str, str], ...] = ()
    link: str | None = None

    def text(self) -> str:
        lines = [self.title, *(f"{label}：{value}" for label, value in self.fields)]
        if self.link:  # on a line of its own: mail readers and chat apps make it a link
            lines += [f"{LINK_LABEL}：", self.link]
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        lines += [f"**{label}**：{value}  " for label, value in self.fields]
        if self.link:
            lines += ["", f"[{LINK_LABEL}]({self.link})"]
        return "\n".join(lines)


def digest(messages: list[Message]) -> Message:
    """Many pages to one robot as one message: one line each, the most severe first."""
    order = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    ranked = sorted(messages, key=lambda m: order.get(m.severity, len(order)))
    shown = ranked[:DIGEST_ITEMS]
    fields = tuple((f"{n}", f"{m.title}" + (f" {m.link}" if m.link else ""))
                   for n, m in enumerate(shown, 1))
    if len(ranked) > len(shown):
        fields += (("…", f"另有 {len(ranked) - len(shown)} 条，请在 gridsense 查看"),)
    worst = ranked[0].severity if ranked else "info"
    return Message(f"【汇总】{len(messages)} 条告警待处理", worst, fields)
