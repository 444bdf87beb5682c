"""Name why a message was refused, as a short stable counter key."""

from __future__ import annotations

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
