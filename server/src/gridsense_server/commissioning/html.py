"""The printable commissioning report: one HTML page, Chinese first with English beside it,
styled by report.css (served by the server: no inline style, no script, so the page keeps the
server's CSP). Printing it, or saving it as PDF, is the browser's."""

from __future__ import annotations

from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..i18n import catalogue

CSS_FILE = Path(__file__).resolve().parent / "report.css"
CSS_URL = "/api/v1/commissioning/report.css"


def _words(language: str, section: str = "commissioning") -> dict[str, Any]:
    return catalogue(language).messages[section]


def _label(key: str, section: str = "commissioning") -> str:
    zh, en = _words("zh-CN", section)[key], _words("en", section)[key]
    return f'{escape(zh)} <span class="en">{escape(en)}</span>'


def _term(section: str, code: str) -> str:
    """A code (channel, status, metric) in words where the catalogue has it, else as it is."""
    if code in _words("zh-CN", section):
        return _label(code, section)
    return escape(code)


def _data(key: str) -> str:
    """A cell's column name, shown before it where the table folds into cards (phones)."""
    return f' data-label="{escape(_words("zh-CN")[key])}"'


def _time(text: str | None, zone: ZoneInfo) -> str:
    if text is None:
        return "—"
    return datetime.fromisoformat(text).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return escape(_words("zh-CN")["seconds"].format(n=f"{value:.1f}"))


def _fact(key: str, value: str) -> str:
    return f"<tr><th>{_label(key)}</th><td>{value}</td></tr>"


def _point_rows(report: dict[str, Any], zone: ZoneInfo) -> str:
    rows = []
    for point in report["points"]:
        first = point["first"]
        readings = "<br>".join(f'{_term("metric_names", r["metric"])} = {r["value"]:g}'
                               for r in first) or "—"
        when = _time(first[0]["t"], zone) if first else "—"
        status = "ok" if point["ok"] else "missing"
        rows.append(
            f'<tr class="{status}"><td{_data("name")}>{escape(point["name"])}</td>'
            f'<td class="id"{_data("point")}>{escape(point["point"])}</td>'
            f'<td{_data("grid")}>{escape(point["grid_name"] or point["grid"])}</td>'
            f'<td{_data("first_reading")}>{readings}</td>'
            f'<td{_data("first_time")}>{when}</td>'
            f'<td{_data("status")}>{_label(status)}</td></tr>')
    return "\n".join(rows)


def _delivery_rows(drill: dict[str, Any], zone: ZoneInfo) -> str:
    return "\n".join(
        f'<tr><td{_data("channel")}>{_term("channel_names", d["channel"])}</td>'
        f'<td{_data("delivery_status")}>{_term("delivery_statuses", d["status"])}</td>'
        f'<td{_data("sent_at")}>{_time(d["sent_at"], zone)}</td>'
        f'<td{_data("error")}>{escape(d["error"] or "")}</td></tr>'
        for d in drill["deliveries"])


def render(report: dict[str, Any], timezone: str) -> str:
    zone = ZoneInfo(timezone)
    drill = report["drill"]
    verdict = report["verdict"]
    gateway = escape(report["gateway"]) + (
        f'（{escape(report["gateway_name"])}）' if report["gateway_name"] else "")
    installer = escape(report["installer_name"] or report["installer"])
    verdict_words = _label(verdict, "commissioning_verdicts")
    via = _term("channel_names", drill["reached_via"]) if drill["reached_via"] else "—"
    reasons = "".join(f"<li>{escape(r['text'])}</li>" for r in report["reasons"])
    head = ("<th>{}</th>" * 6).format(*(_label(k) for k in (
        "name", "point", "grid", "first_reading", "first_time", "status")))
    deliveries = ("<th>{}</th>" * 4).format(*(_label(k) for k in (
        "channel", "delivery_status", "sent_at", "error")))
    return f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(_words("zh-CN")["title"])} {escape(report["gateway"])}</title>
<link rel="stylesheet" href="{CSS_URL}">
<link rel="icon" href="data:,">
</head>
<body>
<main class="report">
<h1>{_label("title")}</h1>
<p class="verdict {verdict}" id="verdict">{_label("verdict")}：{verdict_words}</p>
{f'<ul class="reasons">{reasons}</ul>' if reasons else ""}
<table class="facts">
{_fact("gateway", gateway)}
{_fact("community", escape(report["community"] or "—"))}
{_fact("location", escape(report["location"] or "—"))}
{_fact("installer", installer)}
{_fact("started_by", escape(report["started_by"]))}
{_fact("started_at", _time(report["started_at"], zone))}
{_fact("checked_at", _time(report["checked_at"], zone))}
</table>
<h2>{_label("points")}</h2>
<table class="points">
<thead><tr>{head}</tr></thead>
<tbody>
{_point_rows(report, zone)}
</tbody>
</table>
<h2>{_label("drill")}</h2>
<table class="facts drill">
{_fact("outcome", _label(drill["outcome"], "drill_outcomes"))}
{_fact("reached_via", via)}
{_fact("delivery_s", _seconds(drill["delivery_s"]))}
{_fact("acknowledged_at", _time(drill["acknowledged_at"], zone))}
{_fact("round_trip_s", _seconds(drill["round_trip_s"]))}
</table>
<h3>{_label("deliveries")}</h3>
<table class="deliveries">
<thead><tr>{deliveries}</tr></thead>
<tbody>
{_delivery_rows(drill, zone)}
</tbody>
</table>
<p class="hint">{_label("print_hint")}</p>
</main>
</body>
</html>
"""
