"""The enrollment QR code, as SVG (pure Python: segno)."""

from __future__ import annotations

import io

import segno


def qr_svg(text: str, title: str) -> bytes:
    out = io.BytesIO()
    # Error correction M: survives a smudged phone screen; the URI stays well inside version 10.
    segno.make_qr(text, error="m").save(out, kind="svg", scale=6, border=4, title=title,
                                         xmldecl=True, svgns=True, encoding="utf-8")
    return out.getvalue()
