"""Split a credential transfer into numbered parts that each fit the protocol's payload limit.

A community of 10,000 residents is ~1 MiB of compact credentials; one MQTT message may carry
256 KiB. The split is deterministic (same changes -> same parts), so a part the gateway lost can
be rebuilt and resent alone as long as the community's version has not moved.
"""

from __future__ import annotations

import json
from typing import Any

from gridsense_protocol import MAX_PAYLOAD_BYTES

from .credentials import Changes

# Room for the envelope and the other args (ids, version, the 64-hex secret) in every part.
PART_BUDGET = MAX_PAYLOAD_BYTES - 16 * 1024


def _size(item: Any) -> int:
    return len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode()) + 1


def split(changes: Changes, budget: int = PART_BUDGET) -> list[dict[str, Any]]:
    """The ``access_sync`` args of every part, in order (one part when it all fits)."""
    parts: list[tuple[list[list[Any]], list[str]]] = [([], [])]
    used = 0
    for kind, items in ((0, changes.upserts), (1, changes.revoked)):
        for item in items:
            size = _size(item)
            if used + size > budget and (parts[-1][0] or parts[-1][1]):
                parts.append(([], []))
                used = 0
            parts[-1][kind].append(item)  # type: ignore[arg-type]
            used += size
    out: list[dict[str, Any]] = []
    for index, (upserts, revoked) in enumerate(parts):
        if changes.snapshot:
            args: dict[str, Any] = {"mode": "snapshot", "community": changes.community,
                                    "version": changes.version, "secret": changes.secret,
                                    "credentials": upserts}
        else:
            args = {"mode": "delta", "community": changes.community, "base": changes.base,
                    "version": changes.version, "credentials": upserts, "revoked": revoked}
        if len(parts) > 1:
            args |= {"part": index, "parts": len(parts)}
        out.append(args)
    return out
