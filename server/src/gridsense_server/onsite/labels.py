"""A point's check-in label: a QR code ``GS1:L:<point>:<version>:<token>`` and, printed under
it, an eight-digit code to type when the camera cannot be used.

Token and code are HMACs of (point, version) under a key derived from the server's secret: a
label proves the holder saw that point's label (not just knew its id), the database holds only
the version, and rotating a point (version + 1) voids every copy printed before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from gridsense_protocol.qr import LABEL, QrError, compose, expect

from ..db.onsite_models import PointLabel
from .refusals import LabelRefused

TOKEN_CHARS = 20  # base32: 100 bits
CODE_DIGITS = 8


@dataclass(frozen=True, slots=True)
class Label:
    point_id: str
    version: int
    qr_text: str
    code: str  # digits only; shown grouped as "1234 5678"

    @property
    def code_display(self) -> str:
        return f"{self.code[:4]} {self.code[4:]}"


class LabelSigner:
    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(b"gridsense-label:" + secret).digest()

    def _mac(self, purpose: str, point_id: str, version: int) -> bytes:
        return hmac.new(self._key, f"{purpose}\n{point_id}\n{version}".encode(),
                        hashlib.sha256).digest()

    def label(self, point_id: str, version: int) -> Label:
        token = base64.b32encode(self._mac("qr", point_id, version)).decode()[:TOKEN_CHARS]
        number = int.from_bytes(self._mac("code", point_id, version)[:8], "big")
        return Label(point_id, version, compose(LABEL, f"{point_id}:{version}:{token}"),
                     f"{number % 10 ** CODE_DIGITS:0{CODE_DIGITS}d}")

    def check_qr(self, text: str, point_id: str, version: int) -> None:
        """Accept the scanned text as this point's current label, or LabelRefused saying why."""
        try:
            body = expect(text, LABEL)
        except QrError as error:
            raise LabelRefused("checkin_not_label", str(error)) from None
        scanned_point, _, rest = body.partition(":")
        scanned_version, _, _token = rest.partition(":")
        if scanned_point != point_id:
            raise LabelRefused("checkin_wrong_point",
                               f"this label belongs to another point ({scanned_point[:64]})")
        if scanned_version != str(version):
            raise LabelRefused("checkin_label_replaced",
                               "this label has been replaced; the point has a newer one")
        if not hmac.compare_digest(self.label(point_id, version).qr_text, text.strip()):
            raise LabelRefused("checkin_forged",
                               "this label is not genuine (its signature does not match)")

    def check_code(self, typed: str, point_id: str, version: int) -> None:
        digits = "".join(ch for ch in typed if not ch.isspace() and ch != "-")
        if not (digits.isdigit() and len(digits) == CODE_DIGITS):
            raise LabelRefused("checkin_code_format", f"a label code is {CODE_DIGITS} digits")
        if not hmac.compare_digest(self.label(point_id, version).code, digits):
            raise LabelRefused("checkin_code_wrong",
                               "this is not the code on this point's label")


def current_version(session: Session, point_id: str) -> int:
    row = session.get(PointLabel, point_id)
    return row.version if row is not None else 1


def rotate(session: Session, point_id: str, actor: str, now: datetime) -> int:
    """A new version for the point's label (every printed copy stops working); returns it."""
    row = session.get(PointLabel, point_id, with_for_update=True)
    if row is None:
        row = PointLabel(point_id=point_id, version=1, rotated_at=now, rotated_by=actor)
        session.add(row)
    row.version += 1
    row.rotated_at, row.rotated_by = now, actor
    return row.version
