"""What the phone sent that is not kept: a label, a code or a photo. ``key`` names the reason in
the message catalogues' ``errors`` (the person reads it in Chinese); ``detail`` says it in
English for logs and scripts."""

from __future__ import annotations


class OnsiteRefused(Exception):
    def __init__(self, key: str, detail: str) -> None:
        super().__init__(detail)
        self.key = key
        self.detail = detail


class LabelRefused(OnsiteRefused):
    """A scanned or typed label that does not check this point in."""


class PhotoRefused(OnsiteRefused):
    """An upload that is not an acceptable photo, or no room for it."""
