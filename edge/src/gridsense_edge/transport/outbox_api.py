"""What the outbox hands around: the message as stored and sent, and the interface the
publisher and the uplink see (``SqliteOutbox`` in ``outbox.py`` is the one implementation)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .outbox_caps import ROW_OVERHEAD

INCIDENT, BULK = 0, 1  # lane index: claimed in this order


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    topic: str
    payload: bytes
    # telemetry, incident, snapshot, access, health, status, cmd_result: lane, counters, logs
    kind: str
    event_id: str
    seq: int
    qos: int = 1
    retain: bool = False
    created: float = 0.0  # wall-clock time it was stored (seconds since the epoch)
    offline: bool = False  # stored while the uplink was down

    @property
    def lane(self) -> int:
        # A snapshot travels with its incident; access events are audit records: same lane,
        # never evicted by telemetry.
        return INCIDENT if self.kind in ("incident", "snapshot", "access") else BULK

    @property
    def size(self) -> int:
        """What the row counts against its lane's cap."""
        return len(self.payload) + len(self.topic) + ROW_OVERHEAD


MessageFactory = Callable[[int], OutboundMessage]  # builds the message for a given seq


class Outbox(Protocol):
    on_stored: Callable[[], None]  # called after new rows are committed (wakes the uplink)
    link_up: bool  # set by the uplink: rows stored while False are marked ``offline``,
    # and what was stored while False is synced to disk when it turns True

    def submit(self, make: MessageFactory) -> OutboundMessage:
        """Assign the next seq, build the message with it, store it; never blocks on I/O
        beyond a local commit, never raises for a full lane (it sheds and counts)."""

    def claim(self, limit: int) -> list[OutboundMessage]:
        """Up to ``limit`` committed messages not yet handed out: incidents first, seq order."""

    def ack(self, message: OutboundMessage) -> None:
        """The broker has it (PUBACK): delete it (batched)."""

    def release(self, message: OutboundMessage) -> None:
        """It was handed out but not sent: hand it out again, before newer ones."""

    def resend(self, seqs: list[int]) -> list[int]:
        """Hand these out again (unconfirmed too long); returns those still stored."""

    def confirm(self, ranges: list[tuple[int, int]]) -> None:
        """The server has settled these sequence ranges: delete them (batched)."""

    @property
    def server_confirms(self) -> bool: ...

    def expect_server_confirms(self) -> None: ...

    @property
    def last_seq(self) -> int: ...

    @property
    def next_seq(self) -> int: ...

    @property
    def depth(self) -> int: ...

    def stats(self) -> dict[str, int]: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...
