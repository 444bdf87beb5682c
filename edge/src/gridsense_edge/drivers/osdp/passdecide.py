"""Grant or deny an electronic pass (QR ``GS1:P:``) from the local copy alone: the keys, the
records and revocations the credential sync delivered, this gateway's use counts, and a clock
it can trust. Reasons, in the order they are checked, are the protocol's (docs/protocol.md)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gridsense_protocol.passes import COMPACT, Pass, PassError, verify

from ...logs import log_event
from .credentials import CredentialStore
from .decisions import Decision
from .passbook import PassRecord, UsesFull

log = logging.getLogger(__name__)

PASS_PREFIX = "GS1:P:"
DEFAULT_SKEW_S = 60.0


@dataclass(frozen=True, slots=True)
class PassContext:
    door: str
    building: str | None
    now: float
    clock_trusted: bool
    skew_s: float = DEFAULT_SKEW_S


def is_pass(text: str) -> bool:
    return text.startswith(PASS_PREFIX)


def decide_pass(store: CredentialStore, text: str, at: PassContext) -> Decision:
    """The decision on one scanned text. A grant of a limited pass has counted its use on
    disk before this returns, so the lock opens only for a use that is recorded."""
    book = store.passes
    try:
        item = verify(text, public_keys=book.public_keys, site_keys=book.site_keys)
    except PassError as exc:
        return Decision(False, exc.reason, None, None)
    record = book.record(item.pass_id)
    holder = item.holder if item.form != COMPACT else (record.holder if record else None)
    reason = _judge(store, item, record, holder, at)
    return Decision(reason is None, reason, holder, None, item.pass_id)


def _judge(store: CredentialStore, item: Pass, record: PassRecord | None,
           holder: str | None, at: PassContext) -> str | None:
    if not at.clock_trusted:
        return "clock"
    # The narrower of the pass's window and its synced record's (the server may shorten one).
    not_before = max(item.not_before, record.not_before if record else 0)
    not_after = min(item.not_after, record.not_after if record else item.not_after)
    if at.now + at.skew_s < not_before:
        return "not_yet_valid"
    if at.now - at.skew_s >= not_after:
        return "expired"
    compact = item.form == COMPACT
    if compact and record is None:
        return "unknown"
    book = store.passes
    if book.is_revoked(item.pass_id):
        return "revoked"
    credential = store.by_id(holder) if holder else None
    if credential is not None and credential.revoked:
        return "holder_revoked"
    doors, buildings = (record.doors, record.buildings) if compact and record else (
        item.doors, item.buildings)
    if not doors and not buildings:  # no scope of its own: the holder's
        if credential is None or not credential.allows(at.door, at.building):
            return "door_not_allowed"
    elif not ("*" in doors or at.door in doors
              or (at.building is not None and at.building in buildings)):
        return "door_not_allowed"
    uses = record.uses if compact and record else item.uses
    try:
        if not book.consume(item.pass_id, uses, item.not_after, at.now):
            return "used_up"
    except UsesFull as exc:
        log_event(log, "pass_uses_full", logging.ERROR, pass_id=item.pass_id, error=str(exc))
        return "used_up"
    return None
