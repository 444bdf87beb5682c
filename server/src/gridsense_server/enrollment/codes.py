"""One-time enrollment codes: short enough to type on a gateway's console, unambiguous when
read aloud or off a phone (no 0/O, 1/I/L, no U), and stored only as a hash."""

from __future__ import annotations

import hashlib
import secrets

# 30 symbols: ~49 bits in 10 characters; guessing is further bounded by the per-address
# throttle and the code's expiry.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 10
GROUP = 5


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def format_code(code: str) -> str:
    """``ABCDE-FGHJK``: grouped for reading."""
    return "-".join(code[i:i + GROUP] for i in range(0, len(code), GROUP))


def normalize(text: str) -> str | None:
    """The code as typed (any case, dashes and spaces anywhere), or None when it cannot be
    one (then no database look-up is spent on it)."""
    cleaned = text.upper().replace("-", "").replace(" ", "")
    if len(cleaned) != LENGTH or any(c not in ALPHABET for c in cleaned):
        return None
    return cleaned


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()
