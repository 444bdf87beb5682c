"""The one QR prefix scheme of a deployment: what a scanned code is, before anything reads it.

Every QR code gridsense prints or shows starts ``GS1:<kind>:`` — ``GS1`` the scheme's version,
``<kind>`` one letter: ``L`` a point's check-in label, ``P`` an electronic pass. A scanner (the
worker's phone, a gate's reader) classifies first and hands the body only to the reader of that
kind, so a label shown at a gate or a pass scanned as a check-in is refused as "not this kind",
never parsed as the other. Upper case and ``:`` keep the prefix in QR's alphanumeric mode
(smaller codes). Pure: the phone app's copy of the prefixes (server/web) must say the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SCHEME = "GS1"
LABEL = "L"  # a point's check-in label: GS1:L:<point>:<version>:<token>
PASS = "P"  # an electronic pass (the access module defines its body)
QrKind = Literal["L", "P"]
KINDS: dict[str, str] = {LABEL: "point label", PASS: "pass"}
MAX_QR_TEXT = 512  # longer scanned text is not ours (and never stored)


class QrError(ValueError):
    """A scanned text that is not a gridsense code of the expected kind (the message says why)."""


@dataclass(frozen=True, slots=True)
class ScannedCode:
    kind: QrKind
    body: str


def prefix(kind: QrKind) -> str:
    return f"{SCHEME}:{kind}:"


def compose(kind: QrKind, body: str) -> str:
    return prefix(kind) + body


def classify(text: str) -> ScannedCode:
    """The kind and body of a scanned text; QrError when it is no gridsense code."""
    text = text.strip()
    if len(text) > MAX_QR_TEXT:
        raise QrError(f"scanned text of {len(text)} characters is longer than any gridsense "
                      f"code ({MAX_QR_TEXT})")
    scheme, _, rest = text.partition(":")
    kind, _, body = rest.partition(":")
    if scheme != SCHEME or kind not in KINDS or not body:
        raise QrError(f"not a gridsense code (expected {SCHEME}:<kind>:…, kinds "
                      f"{', '.join(f'{k}={v}' for k, v in KINDS.items())})")
    return ScannedCode(kind, body)  # type: ignore[arg-type]  (checked against KINDS above)


def expect(text: str, kind: QrKind) -> str:
    """The body of a scanned code that must be of ``kind``; QrError naming what it was."""
    code = classify(text)
    if code.kind != kind:
        raise QrError(f"this is a {KINDS[code.kind]}, not a {KINDS[kind]}")
    return code.body
