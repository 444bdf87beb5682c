"""What a page says, in Chinese, once: the formatter. Channels only choose the rendering
(plain text, markdown, a card, a mail) of the same ``Message``."""

from __future__ import annotations

from dataclasses import dataclass

SEVERITY_ZH = {"critical": "紧急", "major": "严重", "minor": "一般", "info": "提示"}
TYPE_ZH = {
    "over_temperature": "温度过高", "rapid_rise": "温度骤升", "door_forced": "门被强行打开",
    "door_held_open": "门长时间未关", "repeated_denied": "多次刷卡被拒",
    "reader_offline": "读卡器离线", "gateway_offline": "网关离线", "point_offline": "测点离线",
    "sensor_offline": "传感器离线", "stale": "数据停止更新", "intrusion": "区域入侵",
    "loitering": "长时间逗留", "access_anomaly": "异常通行",
}
LINK_LABEL = "查看并处理"
# A digest lists this many pages at most: vendors cap a message's size (WeCom markdown
# 4096 bytes, DingTalk 20 KB), and a longer list helps nobody on a phone.
DIGEST_ITEMS = 12


def type_zh(incident_type: str) -> str:
    return TYPE_ZH.get(incident_type, incident_type)


def headline(severity: str, why: str, place: str, incident_type: str) -> str:
    """``【严重】新告警：锅炉房 温度过高`` — what a phone shows before it is opened."""
    return f"【{SEVERITY_ZH.get(severity, severity)}】{why}：{place} {type_zh(incident_type)}"


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
    order = {s: i for i, s in enumerate(SEVERITY_ZH)}
    ranked = sorted(messages, key=lambda m: order.get(m.severity, len(order)))
    shown = ranked[:DIGEST_ITEMS]
    fields = tuple((f"{n}", f"{m.title}" + (f" {m.link}" if m.link else ""))
                   for n, m in enumerate(shown, 1))
    if len(ranked) > len(shown):
        fields += (("…", f"另有 {len(ranked) - len(shown)} 条，请在 gridsense 查看"),)
    worst = ranked[0].severity if ranked else "info"
    return Message(f"【汇总】{len(messages)} 条告警待处理", worst, fields)
