"""Where outgoing messages wait for the uplink: bounded, never blocking the producer.

``Outbox`` is the interface the agent and the uplink agree on; ``MemoryOutbox`` is the
in-memory implementation used until the durable SQLite outbox lands (it will keep messages
until ``ack`` and survive restarts; this one loses what is queued when the process dies).

Flow: producers ``submit``; the uplink ``claim``s messages in order when the broker is
reachable and ``ack``s each one when the broker confirmed it (PUBACK). When full, the oldest
message is dropped and counted: fresh data is worth more than stale data on a gateway whose
uplink has been down for hours, and the bound is what keeps the agent's memory flat.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from .logs import log_event

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGES = 5000
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
DROP_LOG_EVERY_S = 30.0


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    topic: str
    payload: bytes
    kind: str  # telemetry, incident, health, status: for counters and logs
    event_id: str
    seq: int
    qos: int = 1
    retain: bool = False


class Outbox(Protocol):
    def submit(self, message: OutboundMessage) -> None:
        """Queue a message; never blocks, never raises for a full queue."""

    def claim(self, limit: int) -> list[OutboundMessage]:
        """Up to ``limit`` messages, oldest first, handed to the uplink for sending."""

    def ack(self, message: OutboundMessage) -> None:
        """The broker has the message (PUBACK): it may be forgotten."""

    def __len__(self) -> int: ...

    @property
    def counters(self) -> dict[str, int]: ...


class MemoryOutbox:
    def __init__(
        self, max_messages: int = DEFAULT_MAX_MESSAGES, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._queue: deque[OutboundMessage] = deque()
        self._bytes = 0
        self._counters = {"submitted": 0, "acked": 0, "dropped": 0}
        self._dropped_since_log = 0
        self._last_drop_log = -DROP_LOG_EVERY_S

    def submit(self, message: OutboundMessage) -> None:
        self._queue.append(message)
        self._bytes += len(message.payload)
        self._counters["submitted"] += 1
        while len(self._queue) > self.max_messages or self._bytes > self.max_bytes:
            self._drop(self._queue.popleft())

    def _drop(self, message: OutboundMessage) -> None:
        self._bytes -= len(message.payload)
        self._counters["dropped"] += 1
        key = f"dropped_{message.kind}"
        self._counters[key] = self._counters.get(key, 0) + 1
        self._dropped_since_log += 1
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_EVERY_S:
            log_event(
                log, "outbox_full_dropped_oldest", logging.WARNING,
                dropped=self._dropped_since_log, total_dropped=self._counters["dropped"],
                queued=len(self._queue), oldest_seq=message.seq, kind=message.kind,
            )
            self._last_drop_log = now
            self._dropped_since_log = 0

    def claim(self, limit: int) -> list[OutboundMessage]:
        out = []
        while self._queue and len(out) < limit:
            message = self._queue.popleft()
            self._bytes -= len(message.payload)
            out.append(message)
        return out

    def ack(self, message: OutboundMessage) -> None:
        self._counters["acked"] += 1

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def counters(self) -> dict[str, int]:
        return {**self._counters, "queued": len(self._queue), "queued_bytes": self._bytes}
