"""The QR prefix scheme: a label and a pass are told apart before either is parsed."""

from __future__ import annotations

import pytest

from gridsense_protocol.qr import LABEL, PASS, QrError, classify, compose, expect


def test_kinds_are_told_apart() -> None:
    label, a_pass = compose(LABEL, "gw-01.boiler:1:ABC"), compose(PASS, "tok")
    assert (label, a_pass) == ("GS1:L:gw-01.boiler:1:ABC", "GS1:P:tok")
    assert classify(f"  {label}\n").kind == LABEL
    assert expect(label, LABEL) == "gw-01.boiler:1:ABC"
    with pytest.raises(QrError, match="this is a pass, not a point label"):
        expect(a_pass, LABEL)
    with pytest.raises(QrError, match="this is a point label, not a pass"):
        expect(label, PASS)


@pytest.mark.parametrize("text", ["", "GS1:L:", "GS1:X:body", "GS2:L:body", "gs1:l:body",
                                  "https://example.com/GS1:L:x", "GS1:L:" + "x" * 600])
def test_what_is_not_ours_is_refused(text: str) -> None:
    with pytest.raises(QrError):
        classify(text)
