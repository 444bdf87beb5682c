"""The print-ready sheet of check-in labels (HTML, one card per point: the QR code as inline
SVG, the point's names, the typed code). No inline script or style: the stylesheet is served
beside it, so the page keeps the server's CSP."""

from __future__ import annotations

import html
import io
from dataclasses import dataclass

import segno

from .labels import Label


@dataclass(frozen=True, slots=True)
class LabelCard:
    label: Label
    point_name: str
    location: str
    grid_name: str


def qr_svg(text: str) -> str:
    out = io.BytesIO()
    # Error correction Q: a label outdoors gets scratched and dirty; the full quiet zone (4
    # modules) so a phone finds the code next to the printed text.
    segno.make_qr(text, error="q").save(out, kind="svg", scale=4, border=4, xmldecl=False,
                                         omitsize=True, svgns=True, svgclass="qr",
                                         lineclass=None, encoding="utf-8")
    return out.getvalue().decode()


def sheet_html(cards: list[LabelCard], stylesheet: str) -> str:
    esc = html.escape
    items = "\n".join(
        f"""<section class="label">
  {qr_svg(card.label.qr_text)}
  <div class="text">
    <p class="name">{esc(card.point_name)}</p>
    <p class="place">{esc(card.location)}</p>
    <p class="grid">{esc(card.grid_name)}</p>
    <p class="code">{esc(card.label.code_display)}</p>
    <p class="hint">网格员签到：扫码或输入上方编码 · Scan or type the code to check in</p>
    <p class="id">{esc(card.label.point_id)} · v{card.label.version}</p>
  </div>
</section>""" for card in cards)
    empty = "" if cards else '<p class="empty">没有可打印的点位 / no points to print</p>'
    return f"""<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>点位签到标签 / Check-in labels</title>
<link rel="stylesheet" href="{esc(stylesheet)}">
</head>
<body>
<header><h1>点位签到标签</h1>
<p>Check-in labels · 打印后贴在点位旁；换发标签后旧标签失效</p></header>
<main class="sheet">
{items}{empty}
</main>
</body>
</html>
"""


STYLESHEET = """
body { font-family: "Noto Sans CJK SC", "PingFang SC", sans-serif; margin: 12mm; }
header h1 { font-size: 18pt; margin: 0; }
header p { color: #555; margin: 2mm 0 6mm; }
.sheet { display: grid; grid-template-columns: repeat(2, 1fr); gap: 6mm; }
.label { display: flex; gap: 4mm; border: 0.4mm dashed #888; padding: 4mm; break-inside: avoid; }
.label svg.qr { width: 38mm; height: 38mm; flex: none; }
.text p { margin: 0 0 1.2mm; }
.name { font-size: 14pt; font-weight: bold; }
.place, .grid { font-size: 10pt; color: #333; }
.code { font-size: 18pt; font-family: "Noto Sans Mono CJK SC", monospace; letter-spacing: 1mm; }
.hint, .id { font-size: 7.5pt; color: #666; }
@media print { body { margin: 8mm; } header p { display: none; } }
"""
