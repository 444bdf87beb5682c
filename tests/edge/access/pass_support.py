"""Pass keys and passes for the gateway tests: real Ed25519 signatures and site MACs."""

from __future__ import annotations

import time
from typing import Any

from gridsense_protocol import passes
from gridsense_protocol.passes import Pass

T0 = int(time.time()) // 3600 * 3600  # this hour: the copy prunes passes expired a day ago
PRIVATE, PUBLIC = passes.new_signing_key()
SITE = passes.new_site_key()
KEY_ID = 2


def pass_keys() -> dict[str, dict[str, str]]:
    return {"public": {str(KEY_ID): PUBLIC.hex()}, "site": {str(KEY_ID): SITE.hex()}}


def make_pass(**changes: Any) -> Pass:
    fields: dict[str, Any] = dict(
        pass_id=passes.new_pass_id(), not_before=T0, not_after=T0 + 3600, key_id=KEY_ID,
        kind="visitor", holder="alice", uses=1, doors=("b3-east",), buildings=())
    fields.update(changes)
    return Pass(**fields)


def signed(item: Pass) -> str:
    return passes.sign(item, PRIVATE)


def compact(item: Pass) -> str:
    return passes.mac(item, SITE)


def record(item: Pass) -> list[Any]:
    """The sync's record of a pass (what a compact pass leaves out)."""
    return [item.pass_id, item.kind, item.holder, item.not_before, item.not_after, item.uses,
            list(item.doors), list(item.buildings)]


def forged(item: Pass) -> str:
    """Signed with a key nobody synced, under the genuine key id."""
    other, _ = passes.new_signing_key()
    return passes.sign(item, other)
