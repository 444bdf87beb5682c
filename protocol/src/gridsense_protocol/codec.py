"""Encode and decode messages. Every failure is a ProtocolError naming the field at fault."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from pydantic import ValidationError

from .messages import INT64_MAX, MESSAGE_TYPES, Envelope
from .topics import Kind, TopicError, parse_topic

# A JSON message above this is refused before parsing: it protects the server's memory.
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_SNAPSHOT_BYTES = 1024 * 1024
_JPEG_MAGIC = b"\xff\xd8\xff"
# A snapshot is numbered like every message: its seq rides in a JPEG comment segment (COM,
# 0xFFFE) right after the start-of-image marker, which every decoder skips.
_SEQ_COMMENT = re.compile(rb"\A\xff\xd8\xff\xfe..gridsense seq=(\d{1,19})", re.DOTALL)


class ProtocolError(ValueError):
    """A message that breaks the contract; ``field`` is a path such as ``readings[2].value``."""

    def __init__(self, topic: str, field: str, reason: str, gateway: str | None = None) -> None:
        where = f"field {field!r}" if field else "payload"
        super().__init__(f"{topic}: {where}: {reason}")
        self.topic = topic
        self.field = field
        self.reason = reason
        self.gateway = gateway


@dataclass(frozen=True, slots=True)
class Snapshot:
    kind: ClassVar[Kind] = Kind.SNAPSHOT

    gateway: str
    event: str
    jpeg: bytes
    seq: int | None = None  # from the JPEG's comment; None when the sender did not number it


def tag_snapshot(jpeg: bytes, seq: int) -> bytes:
    """The JPEG with a ``gridsense seq=N`` comment segment after its start-of-image marker."""
    text = f"gridsense seq={seq}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + jpeg[2:]


def snapshot_seq(jpeg: bytes) -> int | None:
    match = _SEQ_COMMENT.match(jpeg)
    if match is None:
        return None
    seq = int(match.group(1))
    return seq if seq <= INT64_MAX else None  # 19 digits can exceed a signed 64-bit column


def encode(message: Envelope) -> bytes:
    return message.model_dump_json(exclude_none=True).encode()


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def decode(topic: str, payload: bytes) -> Envelope | Snapshot:
    """Validate a topic and its payload; the gateway in the payload must match the topic."""
    try:
        parsed = parse_topic(topic)
    except TopicError as exc:
        raise ProtocolError(topic, "", exc.reason) from None
    if parsed.kind is Kind.SNAPSHOT:
        return _decode_snapshot(topic, parsed.gateway, parsed.event or "", payload)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(
            topic, "", f"payload is {len(payload)} bytes, limit {MAX_PAYLOAD_BYTES}", parsed.gateway
        )
    cls = MESSAGE_TYPES[parsed.kind]
    try:
        message = cls.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = _field_path(first["loc"])
        reason = first["msg"]
        if first["type"] == "json_invalid":
            field, reason = "", f"not valid JSON ({first['msg']})"
        more = exc.error_count() - 1
        if more:
            reason += f" (and {more} more error{'s' if more > 1 else ''})"
        raise ProtocolError(topic, field, reason, parsed.gateway) from None
    if message.gateway != parsed.gateway:
        raise ProtocolError(
            topic,
            "gateway",
            f"payload names gateway {message.gateway!r} but was published under {parsed.gateway!r}",
            parsed.gateway,
        )
    return message


def _decode_snapshot(topic: str, gateway: str, event: str, payload: bytes) -> Snapshot:
    if len(payload) > MAX_SNAPSHOT_BYTES:
        raise ProtocolError(
            topic, "", f"snapshot is {len(payload)} bytes, limit {MAX_SNAPSHOT_BYTES}", gateway
        )
    if not payload.startswith(_JPEG_MAGIC):
        raise ProtocolError(topic, "", "snapshot is not a JPEG image", gateway)
    return Snapshot(gateway, event, payload, snapshot_seq(payload))
