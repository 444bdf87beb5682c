"""Name why a message was refused, as a short stable counter key."""

from __future__ import annotations

import re

from gridsense_protocol import MAX_PAYLOAD_BYTES, ProtocolError

REASONS = ("oversized", "bad_topic", "malformed_json", "gateway_mismatch", "bad_field")


def invalid_reason(error: ProtocolError, payload_size: int) -> str:
    if payload_size > MAX_PAYLOAD_BYTES:
        return "oversized"
    if error.gateway is None:  # the topic itself did not parse
        return "bad_topic"
    if not error.field and error.reason.startswith("not valid JSON"):
        return "malformed_json"
    if error.field == "gateway" and "published under" in error.reason:
        return "gateway_mismatch"
    return "bad_field"


# "incidents: DataError(...)" -> "incidents.DataError"; "bad_field: gridsense/..." -> "bad_field".
_REASON_HEAD = re.compile(r"\A([a-z][a-z0-9_ ]{0,39}):\s*(?:([A-Za-z_][A-Za-z0-9_]{0,63})\()?")


def reason_key(reason: str) -> str:
    """A dead letter's reason as a bounded counter key: the part before its colon, and the
    exception class where the reason names one (a worker or the sequence record failed)."""
    match = _REASON_HEAD.match(reason)
    if match is None:
        return "other"
    head = match.group(1).strip().replace(" ", "_")
    return f"{head}.{match.group(2)}" if match.group(2) else head
