"""Acknowledge every MQTT message exactly once, only after its effect is durable, in order.

A ``Delivery`` is one received message on its way through the server. The router registers it
with its session's ``AckLedger`` (in arrival order) saying how many effects it has — a reading
batch written to InfluxDB or the disk spool, a committed incident or gateway row. Each effect
calls ``part_done()`` once durable; when none is left, the sequence store records the message's
``seq`` (the settler), and only then does the ledger release the acknowledgement.

Acks leave in the order the messages arrived (MQTT requires PUBACKs in receive order): a
settled message waits for the ones received before it. A packet id is only meaningful on the
connection it arrived on, so a delivery from an earlier connection is never acked: the broker
redelivers it (same message, DUP flag) on the new connection, where it is handled again —
idempotently — and acked.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from gridsense_protocol import Envelope, Status

# (connection generation, packet id, QoS); None for QoS 0 (nothing to acknowledge).
AckToken = tuple[int, int, int]


class Delivery:
    __slots__ = ("ledger", "message", "pending", "sequence", "settled", "token")

    def __init__(self, message: Envelope | None, token: AckToken | None) -> None:
        self.message = message  # None: invalid, counted and dropped — acked all the same
        self.token = token
        # (gateway, seq) to record once durable; None for status messages (they reuse the
        # latest seq) and invalid ones.
        self.sequence: tuple[str, int] | None = (
            None if message is None or isinstance(message, Status)
            else (message.gateway, message.seq)
        )
        self.ledger: AckLedger | None = None
        self.pending = 0
        self.settled = False

    def release(self) -> None:
        """Drop the decoded message once handed on (a telemetry message's readings, kept
        until its ack, would make the in-flight window cost ~10x more memory)."""
        self.message = None

    def part_done(self) -> None:
        """One effect is durable (call once per effect)."""
        self.pending -= 1
        if self.pending == 0 and self.ledger is not None:
            self.ledger.effects_durable(self)


class AckLedger:
    """The deliveries of one MQTT session that are not acknowledged yet, in arrival order.

    Used from the asyncio loop only; acks are handed to the consumer, which sends them from
    its own network thread.
    """

    def __init__(
        self,
        send_acks: Callable[[list[AckToken]], None],
        generation: Callable[[], int],
        settle: Callable[[Delivery], None],
    ) -> None:
        self._send_acks = send_acks
        self._generation = generation
        self._settle = settle
        self._order: deque[Delivery] = deque()

    def register(self, delivery: Delivery, parts: int) -> None:
        """Call in arrival order, before any of the ``parts`` effects can complete."""
        delivery.ledger = self
        delivery.pending = parts
        self._order.append(delivery)
        if parts == 0:
            self.effects_durable(delivery)

    def effects_durable(self, delivery: Delivery) -> None:
        if delivery.sequence is None:
            self.settled(delivery)
        else:
            self._settle(delivery)  # records the seq, then calls settled()

    def settled(self, delivery: Delivery) -> None:
        delivery.settled = True
        self._release()

    def _release(self) -> None:
        order = self._order
        current = self._generation()
        ready: list[AckToken] = []
        while order:
            head = order[0]
            token = head.token
            stale = token is not None and token[0] != current
            if not (head.settled or stale):
                break
            order.popleft()
            if head.settled and token is not None and not stale:
                ready.append(token)
        if ready:
            self._send_acks(ready)

    def __len__(self) -> int:
        return len(self._order)
