"""莲园社区's site plan, drawn by code: the demo community's wall, gates, roads and buildings as an
SVG (labels in Chinese), and where the demo's points and gateways sit on it.

The drawing is plain shapes with presentation attributes (no style sheet, no script): it
passes the server's SVG checks and scales to any screen. Places are fractions of the
drawing's width and height, as the plan API takes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 1200, 800
FONT = "Noto Sans CJK SC, Source Han Sans SC, Microsoft YaHei, PingFang SC, sans-serif"


@dataclass(frozen=True, slots=True)
class Area:
    name: str
    x: float
    y: float
    w: float
    h: float
    kind: str = "building"  # building | clinic | office | green | parking | guard

    def at(self, fx: float, fy: float) -> tuple[float, float]:
        """A spot inside the area (fractions of it) as fractions of the whole drawing."""
        return ((self.x + fx * self.w) / WIDTH, (self.y + fy * self.h) / HEIGHT)


_FILL = {"building": ("#dbe4f0", "#5b6f8c"), "clinic": ("#fde2e1", "#b4534f"),
         "office": ("#e7e0f5", "#6d5a9c"), "green": ("#d5ecd0", "#6a9a5f"),
         "parking": ("#eeeeee", "#8a8a8a"), "guard": ("#f5ead0", "#9c7d3a")}

AREAS = {a.name: a for a in (
    Area("1号楼", 110, 110, 150, 80), Area("2号楼", 290, 110, 150, 80),
    Area("3号楼", 470, 110, 100, 80),
    Area("4号楼", 110, 260, 150, 80), Area("5号楼", 290, 260, 150, 80),
    Area("6号楼", 470, 260, 100, 80),
    Area("7号楼", 660, 110, 150, 80), Area("8号楼", 840, 110, 150, 80),
    Area("9号楼", 1020, 110, 100, 80),
    Area("社区服务中心", 110, 480, 200, 110, "office"),
    Area("中心花园", 350, 480, 210, 210, "green"),
    Area("社区卫生站", 660, 480, 200, 110, "clinic"),
    Area("停车场", 900, 480, 220, 210, "parking"),
    Area("健身广场", 660, 260, 220, 100, "green"),
    Area("垃圾分类站", 920, 270, 110, 60, "guard"),
    Area("门卫室", 1090, 340, 44, 44, "guard"),
)}

# The demo registry's points and gateways (scripts/demo_data/registry.yaml) on the drawing.
DEMO_PLACES: dict[tuple[str, str], tuple[float, float]] = {
    # 1号楼 has four: spread so that their name labels (drawn under each marker) do not meet.
    ("point", "gw-01.boiler"): AREAS["1号楼"].at(0.18, 0.7),
    ("gateway", "gw-03"): AREAS["1号楼"].at(0.8, 0.9),
    ("point", "gw-03.east-gate"): AREAS["1号楼"].at(1.0, 0.12),
    ("point", "gw-01.lobby-cam"): AREAS["1号楼"].at(0.5, 1.4),  # at its door, on the lane
    ("gateway", "gw-01"): AREAS["2号楼"].at(0.5, 0.72),
    ("point", "gw-01.pump"): AREAS["5号楼"].at(0.5, 0.72),
    ("point", "gw-01.ebike-shed"): AREAS["3号楼"].at(0.5, -0.25),  # the shed north of 3号楼
    ("point", "gw-02.substation"): AREAS["8号楼"].at(0.25, 0.72),
    ("gateway", "gw-02"): AREAS["8号楼"].at(0.82, 0.72),
    ("point", "gw-02.clinic-fridge"): AREAS["社区卫生站"].at(0.5, 0.72),
}


def _text(x: float, y: float, label: str, size: int = 18, fill: str = "#1f2d3d",
          anchor: str = "middle", weight: str = "normal") -> str:
    return (f'<text x="{x:g}" y="{y:g}" font-size="{size}" font-family="{FONT}" '
            f'font-weight="{weight}" fill="{fill}" text-anchor="{anchor}" '
            f'dominant-baseline="middle">{escape(label)}</text>')


def _area(area: Area) -> str:
    fill, stroke = _FILL[area.kind]
    shape = (f'<rect x="{area.x:g}" y="{area.y:g}" width="{area.w:g}" height="{area.h:g}" '
             f'rx="{18 if area.kind == "green" else 4}" fill="{fill}" stroke="{stroke}" '
             'stroke-width="2"/>')
    size = 13 if area.kind == "guard" else 18
    # A building's name sits in its upper part: the markers go below it.
    label_y = area.y + (area.h * 0.32 if area.kind in ("building", "clinic") else area.h / 2)
    return shape + _text(area.x + area.w / 2, label_y, area.name, size)


def _gate(x: float, y: float, label: str, dx: float, dy: float) -> str:
    """An opening in the wall (a gap across it: upright when the label is beside it), named."""
    line = f"M{x:g} {y - 24:g} v48" if dx else f"M{x - 24:g} {y:g} h48"
    return (f'<rect x="{x - 24:g}" y="{y - 24:g}" width="48" height="48" fill="#ffffff"/>'
            f'<path d="{line}" stroke="#c0392b" stroke-width="4" stroke-dasharray="6 5"/>'
            + _text(x + dx, y + dy, label, 16, "#c0392b", weight="bold"))


def site_plan_svg() -> str:
    """The whole drawing, WIDTH × HEIGHT user units."""
    road = "#f4f1ea"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fbfaf6"/>',
        # The wall around the estate, its inner ring road, and the two main roads.
        '<rect x="60" y="60" width="1080" height="680" fill="#ffffff" stroke="#4a4a4a" '
        'stroke-width="6"/>',
        f'<rect x="80" y="80" width="1040" height="640" fill="none" stroke="{road}" '
        'stroke-width="24"/>',
        f'<rect x="80" y="395" width="1040" height="50" fill="{road}"/>',
        f'<rect x="590" y="80" width="40" height="640" fill="{road}"/>',
        f'<rect x="80" y="212" width="510" height="24" fill="{road}"/>',
        f'<rect x="630" y="212" width="490" height="24" fill="{road}"/>',
        _text(330, 420, "莲园中路", 16, "#8a7f66"),
        _text(880, 420, "莲园中路", 16, "#8a7f66"),
        '<g transform="rotate(-90 610 640)">' + _text(610, 640, "荷风路", 16, "#8a7f66")
        + "</g>",
        *(_area(area) for area in AREAS.values()),
        _gate(610, 60, "北门", 0, 38),
        _gate(1140, 420, "东门", 34, 0),
        _gate(610, 740, "南门", 0, -38),
        # Outside the wall: the streets the gates open on.
        _text(300, 774, "莲园路", 16, "#6b6b6b"),
        '<g transform="rotate(90 1176 600)">' + _text(1176, 600, "湖西大道", 16, "#6b6b6b")
        + "</g>",
        _text(70, 30, "莲园社区平面图", 24, "#1f2d3d", "start", "bold"),
        _text(300, 30, "湖西街道 · 第一网格（1–6号楼）· 第二网格（7–9号楼、卫生站）", 15, "#52606d",
              "start"),
        # North arrow.
        '<path d="M1130 14 l10 26 l-10 -7 l-10 7 z" fill="#1f2d3d"/>',
        _text(1150, 28, "北", 14, "#1f2d3d", "start"),
        "</svg>",
    ]
    return "\n".join(parts) + "\n"
