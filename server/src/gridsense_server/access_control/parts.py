"""Split a credential transfer into numbered parts that each fit the protocol's payload limit.

A community of 10,000 residents is ~1 MiB of compact credentials; one MQTT message may carry
256 KiB. The split is deterministic (same changes -> same parts), so a part the gateway lost can
be rebuilt and resent alone as long as the community's version has not moved. Pass records and
revoked passes are split like credentials; the pass keys ride in part 0.
"""

from __future__ import annotations

import json
from typing import Any

from gridsense_protocol import MAX_PAYLOAD_BYTES

from .credentials import Changes

# Room for the envelope and the other args (ids, version, the 64-hex secret, pass keys) in
# every part.
PART_BUDGET = MAX_PAYLOAD_BYTES - 16 * 1024
_LISTS = ("credentials", "revoked", "passes", "revoked_passes")


def _size(item: Any) -> int:
    return len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode()) + 1


def split(changes: Changes, budget: int = PART_BUDGET) -> list[dict[str, Any]]:
    """The ``access_sync`` args of every part, in order (one part when it all fits)."""
    parts: list[dict[str, list[Any]]] = [{name: [] for name in _LISTS}]
    used = 0
    for name, items in zip(_LISTS, (changes.upserts, changes.revoked, changes.passes,
                                    changes.revoked_passes), strict=True):
        for item in items:
            size = _size(item)
            if used + size > budget and any(parts[-1].values()):
                parts.append({name: [] for name in _LISTS})
                used = 0
            parts[-1][name].append(item)
            used += size
    out: list[dict[str, Any]] = []
    for index, lists in enumerate(parts):
        if changes.snapshot:
            args: dict[str, Any] = {"mode": "snapshot", "community": changes.community,
                                    "version": changes.version, "secret": changes.secret,
                                    "credentials": lists["credentials"]}
        else:
            args = {"mode": "delta", "community": changes.community, "base": changes.base,
                    "version": changes.version, "credentials": lists["credentials"],
                    "revoked": lists["revoked"]}
        for name in ("passes", "revoked_passes"):
            if lists[name]:
                args[name] = lists[name]
        if index == 0 and changes.pass_keys is not None:
            args["pass_keys"] = changes.pass_keys
        if len(parts) > 1:
            args |= {"part": index, "parts": len(parts)}
        out.append(args)
    return out
