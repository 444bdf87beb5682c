"""The keyed hash that stands in for a card number or PIN everywhere past the reader.

Part of the contract: ``AccessEvent.card`` carries it, the server's credential rows and the
gateway's local copy store it, so both sides must compute exactly the same value. HMAC-SHA256
with the community's secret, first 16 hex digits (64 bits: no collisions in a community's
cards, and a stolen database or log yields no card numbers). Card numbers are compared as
numbers: leading zeros (which reader formats add or drop) do not change the hash.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

HASH_HEX_CHARS = 16


def keyed_hash(secret: bytes, kind: Literal["card", "pin"], value: str) -> str:
    value = value.strip()
    if kind == "card":
        value = value.lstrip("0") or "0"
    digest = hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return digest[:HASH_HEX_CHARS]
