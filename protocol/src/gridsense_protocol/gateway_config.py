"""Remote gateway configuration on the wire: its section of the retained ``config`` message,
its hash, the parts a large one travels in, and the JSON Schema both ends validate it with.

The schema is exported from the gateway's own config models (``python -m
gridsense_edge.reconfig.schema``) and kept here because the server installs only this
package, never the gateway's; a test keeps the copy equal to the models.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

from .codec import MAX_PAYLOAD_BYTES

SECTION = "gateway_config"  # key of the ConfigUpdate body
PART_COMMAND = "gateway_config_part"  # cmd carrying one part of a large document
PARTS_RESULT = "gateway_config_parts"  # cmd/result key: the parts a gateway still misses
# Room for the envelope and the part's own fields in every part.
PART_BUDGET = MAX_PAYLOAD_BYTES - 16 * 1024
MAX_DOCUMENT_BYTES = 4 * 2**20  # a gateway config is a few KiB; this bounds the staging


class ApplyState(StrEnum):
    """What the gateway did with a pushed version (reported on cmd/result)."""

    APPLIED = "applied"
    ROLLED_BACK = "rolled_back"  # applied, failed its health window, back on the last good one
    REFUSED = "refused"  # never applied: invalid here, or a change the gateway does not allow


def canonical(document: dict[str, Any]) -> bytes:
    """One byte string per document whatever its key order: what the hash covers."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def config_hash(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(document)).hexdigest()


def split_document(document: dict[str, Any], budget: int = PART_BUDGET) -> list[str]:
    """The canonical text cut into parts of at most ``budget`` bytes (one when it fits)."""
    text = canonical(document).decode("utf-8")
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for char in text:  # by character, so no part ends inside a UTF-8 sequence
        size = len(char.encode("utf-8"))
        if used + size > budget:
            parts.append("".join(current))
            current, used = [], 0
        current.append(char)
        used += size
    parts.append("".join(current))
    return parts


@cache
def schema() -> dict[str, Any]:
    """The gateway config's JSON Schema (draft 2020-12, as pydantic writes it)."""
    text = resources.files(__package__).joinpath("schemas/gateway_config.json").read_text(
        encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded
