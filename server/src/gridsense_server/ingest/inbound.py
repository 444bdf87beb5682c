"""Turning a received message (topic, payload) into an ``InboundMessage``: decoded, or refused
with its reason — counted, and logged sampled so a gateway sending garbage cannot flood the log.
Shared by every ingest source (the MQTT bridge, the NATS consumer)."""

from __future__ import annotations

import logging
from collections import Counter

from gridsense_protocol import Envelope, ProtocolError, Snapshot, decode

from ..acks import AckToken, InboundMessage
from ..counters import Counters
from ..logs import kv
from .classify import invalid_reason

log = logging.getLogger(__name__)

MAX_INVALID_KEYS = 10_000  # (gateway, reason) pairs remembered for sampling


def _log_sampled(n: int) -> bool:
    # The first ten, then every 1000th.
    return n <= 10 or n % 1000 == 0


class InboundDecoder:
    def __init__(self, counters: Counters, source: str) -> None:
        self.counters = counters
        self.source = source  # the client id, named in the log
        self._invalid_seen: Counter[tuple[str, str]] = Counter()

    def message(self, topic: str, payload: bytes, token: AckToken | None,
                delivery: int | str) -> InboundMessage:
        """Never raises: a bug in our own decoding must not end the source's thread (and with
        it, all ingest); it is counted and the message refused."""
        message: Envelope | Snapshot | None = None
        reason: str | None = None
        try:
            message, reason = self.decode(topic, payload)
        except Exception as exc:
            self.counters.inc("ingest.errors")
            log.exception(kv("ingest_error", client_id=self.source, delivery=delivery))
            reason = f"decode error: {exc!r}"
        return InboundMessage(message, token, topic, payload, reason)

    def decode(self, topic: str, payload: bytes) -> tuple[Envelope | Snapshot | None, str | None]:
        """The message, or None and why it was refused."""
        try:
            message = decode(topic, payload)
        except ProtocolError as exc:
            reason = invalid_reason(exc, len(payload))
            self.counters.inc(f"ingest.invalid.{reason}")
            key = (exc.gateway or "?", reason)
            self._invalid_seen[key] += 1
            if len(self._invalid_seen) > MAX_INVALID_KEYS:
                self._invalid_seen.clear()  # bounded
            if _log_sampled(self._invalid_seen[key]):
                log.warning(kv("message_invalid", gateway=exc.gateway, topic=topic,
                               reason=reason, field=exc.field or None, detail=exc.reason[:300],
                               bytes=len(payload), seen=self._invalid_seen[key]))
            return None, f"{reason}: {str(exc)[:400]}"
        return message, None
