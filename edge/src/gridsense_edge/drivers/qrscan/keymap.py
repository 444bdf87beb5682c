"""Key codes a keyboard-mode scanner sends (linux/input-event-codes.h), as characters on a US
layout; and the kernel's ``struct input_event`` records."""

from __future__ import annotations

import struct

EV_KEY = 1
KEY_LEFTSHIFT, KEY_RIGHTSHIFT = 42, 54
KEY_ENTER, KEY_TAB, KEY_KPENTER = 28, 15, 96
# struct input_event on 64-bit Linux: struct timeval (two longs), __u16 type, __u16 code,
# __s32 value — 24 bytes
INPUT_EVENT = struct.Struct("llHHi")

_ROWS = {2: "1234567890-=", 16: "qwertyuiop[]", 30: "asdfghjkl;'`", 43: "\\zxcvbnm,./"}
_SHIFTED = dict(zip("1234567890-=[];'`\\,./", "!@#$%^&*()_+{}:\"~|<>?", strict=True))
PLAIN: dict[int, str] = {KEY_ENTER: "\r", KEY_KPENTER: "\r", KEY_TAB: "\t", 57: " "}
for _start, _chars in _ROWS.items():
    PLAIN.update({_start + i: c for i, c in enumerate(_chars)})


class KeyDecoder:
    """Key presses to text; shift held or not. Releases and auto-repeat type nothing."""

    def __init__(self) -> None:
        self._shift: set[int] = set()

    def feed(self, kind: int, code: int, value: int) -> str:
        if kind != EV_KEY:
            return ""
        if code in (KEY_LEFTSHIFT, KEY_RIGHTSHIFT):
            if value:
                self._shift.add(code)
            else:
                self._shift.discard(code)
            return ""
        if value != 1:
            return ""
        char = PLAIN.get(code, "")
        if self._shift and char:
            return _SHIFTED.get(char, char.upper())
        return char


def encode_text(text: str) -> bytes:
    """The input events a US keyboard-mode scanner sends for ``text`` (tests and the demo)."""
    reverse = {c: (code, False) for code, c in PLAIN.items()}
    reverse.update({c.upper(): (code, True) for code, c in PLAIN.items() if c.isalpha()})
    reverse.update({_SHIFTED[c]: (code, True) for code, c in PLAIN.items() if c in _SHIFTED})
    out = bytearray()
    for char in text:
        code, shifted = reverse[char]
        if shifted:
            out += INPUT_EVENT.pack(0, 0, EV_KEY, KEY_LEFTSHIFT, 1)
        out += INPUT_EVENT.pack(0, 0, EV_KEY, code, 1) + INPUT_EVENT.pack(0, 0, EV_KEY, code, 0)
        if shifted:
            out += INPUT_EVENT.pack(0, 0, EV_KEY, KEY_LEFTSHIFT, 0)
    return bytes(out)
