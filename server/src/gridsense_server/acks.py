"""The acknowledgement contract: a received MQTT message is acknowledged exactly once, only
after each of its named effects is durable and its sequence number recorded, in arrival order.
See docs/architecture.md (ingest) for the whole journey."""

from __future__ import annotations

import bisect
import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gridsense_protocol import Envelope, Snapshot, Status

# (connection generation, packet id, QoS); None for QoS 0 (nothing to acknowledge).
AckToken = tuple[int, int, int]
Range = tuple[int, int]  # inclusive sequence numbers


@dataclass(frozen=True, slots=True)
class Effect:
    """Something made durable for a message. ``records_sequence``: its own transaction records
    the message's (gateway, seq) too, so the settler must not record it again."""

    name: str
    bit: int
    records_sequence: bool


INFLUX_LINES = Effect("influx_lines", 1, records_sequence=False)  # written or spooled
INCIDENT_ROWS = Effect("incident_rows", 2, records_sequence=True)
ACCESS_LOG_ROWS = Effect("access_log_rows", 4, records_sequence=True)
GATEWAY_ROW = Effect("gateway_row", 8, records_sequence=False)
COMMAND_RESULT_ROW = Effect("command_result_row", 16, records_sequence=True)
SNAPSHOT_FILE = Effect("snapshot_file", 32, records_sequence=False)
# Set aside in the dead letters, with its reason (a message refused or failed for good).
DEAD_LETTER_ROW = Effect("dead_letter_row", 64, records_sequence=False)


class Effects:
    """The effects one kind of message waits for, fixed once per route (not per message)."""

    __slots__ = ("effects", "mask")

    def __init__(self, *effects: Effect) -> None:
        self.effects = effects
        self.mask = 0
        for effect in effects:
            self.mask |= effect.bit

    def __repr__(self) -> str:
        return f"Effects({', '.join(e.name for e in self.effects)})"


NO_EFFECTS = Effects()
_DEAD_LETTER_ONLY = Effects(DEAD_LETTER_ROW)


class InboundMessage:
    """One received MQTT message on its way through the server, until its acknowledgement."""

    __slots__ = ("decoded", "ledger", "lost", "on_settled", "payload", "pending", "reason",
                 "recorded", "sequence", "settled", "token", "topic")

    def __init__(self, decoded: Envelope | Snapshot | None, token: AckToken | None,
                 topic: str = "", payload: bytes = b"", reason: str | None = None) -> None:
        self.decoded = decoded  # None: refused (``reason``), dead-lettered — acked all the same
        self.token = token
        # As received, kept until the ack (a reference, not a copy) for a dead letter.
        self.topic = topic
        self.payload = payload
        self.reason = reason
        self.sequence = _sequence_of(decoded)  # (gateway, seq) to record; None: nothing to
        self.ledger: AckLedger | None = None
        self.pending = 0  # bits of the effects not durable yet
        self.recorded = False  # an effect's transaction recorded the sequence
        self.lost = False  # an effect failed for good: its sequence stays unrecorded
        self.settled = False
        # Called once settled, from the asyncio loop (a replayed dead letter leaves the store
        # only then, so a crash before it settles replays it again).
        self.on_settled: Callable[[], None] | None = None

    def release(self) -> None:
        """Drop the decoded message once handed on (a telemetry message's readings, kept
        until its ack, would make the in-flight window cost ~10x more memory)."""
        self.decoded = None

    def done(self, effect: Effect) -> None:
        """``effect`` is durable (call once per registered effect)."""
        if effect.records_sequence:
            self.recorded = True
        self._clear(effect)

    def failed(self, effect: Effect, reason: str = "") -> None:
        """``effect`` cannot be made durable (no retry can fix it; outages retry inside). The
        message is dead-lettered with ``reason`` and acknowledged all the same — a poison
        message must not stall ingest — but its sequence is not recorded, so the checker
        reports it as missing until it is replayed."""
        self.lost = True
        ledger = self.ledger
        if ledger is not None and ledger.dead_letter is not None \
                and not self.pending & DEAD_LETTER_ROW.bit:
            self.pending |= DEAD_LETTER_ROW.bit
            ledger.dead_letter(self, reason or f"{effect.name} failed")
        self._clear(effect)

    @property
    def needs_recording(self) -> bool:
        return self.sequence is not None and not (self.recorded or self.lost)

    def _clear(self, effect: Effect) -> None:
        if not self.pending & effect.bit:
            raise RuntimeError(f"effect {effect.name} was not pending")
        self.pending &= ~effect.bit
        if not self.pending and self.ledger is not None:
            self.ledger.effects_durable(self)


def _sequence_of(decoded: Envelope | Snapshot | None) -> tuple[str, int] | None:
    # Status messages reuse the latest seq; a JPEG's seq comes from its comment, if any.
    if decoded is None or isinstance(decoded, Status) or decoded.seq is None:
        return None
    return (decoded.gateway, decoded.seq)


class AckLedger:
    """The messages of one MQTT session not acknowledged yet, in arrival order.

    Used from the asyncio loop only; acks are handed to the bridge, which sends them from its
    own network thread.
    """

    def __init__(
        self,
        send_acks: Callable[[list[AckToken]], None],
        generation: Callable[[], int],
        settle: Callable[[InboundMessage], None],
    ) -> None:
        self._send_acks = send_acks
        self._generation = generation
        self._settle = settle  # records the sequence if needed, then calls settled()
        # Takes a message to set aside and calls its done(DEAD_LETTER_ROW) once stored.
        self.dead_letter: Callable[[InboundMessage, str], None] | None = None
        self._order: deque[InboundMessage] = deque()
        self._head_since = 0.0  # monotonic time the current first message became first

    def refuse(self, message: InboundMessage, reason: str) -> None:
        """Register a message that will not be applied: dead-lettered, then acknowledged."""
        message.lost = True
        message.reason = reason
        if self.dead_letter is None:
            self.register(message, NO_EFFECTS)
            return
        self.register(message, _DEAD_LETTER_ONLY)
        self.dead_letter(message, reason)

    def stalled_s(self) -> float:
        """How long the oldest unacknowledged message has been first in line (0 when none):
        a lower bound on its age, and how long acks have not moved."""
        return time.monotonic() - self._head_since if self._order else 0.0

    def register(self, message: InboundMessage, effects: Effects) -> None:
        """Call in arrival order, before any of the ``effects`` can complete."""
        message.ledger = self
        message.pending = effects.mask
        if not self._order:
            self._head_since = time.monotonic()
        self._order.append(message)
        if not effects.mask:
            self.effects_durable(message)

    def effects_durable(self, message: InboundMessage) -> None:
        self._settle(message)

    def settled(self, message: InboundMessage, *, release: bool = True) -> None:
        """``message`` is durable. ``release=False``: the caller settles a whole batch and then
        calls ``release()`` once (one hand-off of acks, not one per message)."""
        message.settled = True
        if message.on_settled is not None:
            message.on_settled()
        if release:
            self.release()

    def release(self) -> None:
        """Hand the acks of the settled messages at the head of the line to the bridge."""
        order = self._order
        current = self._generation()
        ready: list[AckToken] = []
        moved = False
        while order:
            head = order[0]
            token = head.token
            stale = token is not None and token[0] != current
            if not (head.settled or stale):
                break
            order.popleft()
            moved = True
            if head.settled and token is not None and not stale:
                ready.append(token)
        if moved:
            self._head_since = time.monotonic()
        if ready:
            self._send_acks(ready)

    def __len__(self) -> int:
        return len(self._order)


class SettledRanges:
    """Per gateway, the sequence ranges whose messages are durable (effects and record): what
    an end-to-end acknowledgement back to the gateway will name."""

    def __init__(self) -> None:
        self._by_gateway: dict[str, list[Range]] = {}

    def add(self, gateway: str, seq: int) -> None:
        ranges = self._by_gateway.setdefault(gateway, [])
        if ranges and ranges[-1][1] + 1 == seq:  # the usual case: the next one, in order
            ranges[-1] = (ranges[-1][0], seq)
            return
        # Out of order (the two sessions interleave a gateway's seqs): touch the neighbours
        # only, so a gateway with many lasting gaps costs no more per message.
        i = bisect.bisect_right(ranges, (seq, math.inf))  # the first range starting after seq
        if i and ranges[i - 1][1] >= seq:
            return  # settled already (a redelivery)
        joins_before = i > 0 and ranges[i - 1][1] + 1 == seq
        joins_after = i < len(ranges) and ranges[i][0] == seq + 1
        if joins_before and joins_after:
            ranges[i - 1 : i + 1] = [(ranges[i - 1][0], ranges[i][1])]
        elif joins_before:
            ranges[i - 1] = (ranges[i - 1][0], seq)
        elif joins_after:
            ranges[i] = (seq, ranges[i][1])
        else:
            ranges.insert(i, (seq, seq))

    def add_range(self, gateway: str, first: int, last: int) -> None:
        """A whole range at once (rare: ranges put back when they could not be sent)."""
        self._by_gateway[gateway] = merge([*self._by_gateway.get(gateway, ()), (first, last)])

    def settled_ranges(self, gateway: str) -> list[Range]:
        return list(self._by_gateway.get(gateway, ()))

    def count(self, gateway: str) -> int:
        return len(self._by_gateway.get(gateway, ()))

    def drop_oldest(self, gateway: str, keep: int) -> None:
        """Keep only the ``keep`` newest ranges of ``gateway`` (a bound on memory)."""
        ranges = self._by_gateway.get(gateway)
        if ranges is not None and len(ranges) > keep:
            del ranges[:len(ranges) - keep]

    def gateways(self) -> list[str]:
        return sorted(self._by_gateway)

    def __contains__(self, gateway: object) -> bool:
        return gateway in self._by_gateway

    def __len__(self) -> int:
        return len(self._by_gateway)


def to_ranges(numbers: Iterable[int]) -> list[Range]:
    """Sorted, merged inclusive ranges of the distinct numbers."""
    ranges: list[Range] = []
    for n in sorted(set(numbers)):
        if ranges and n == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], n)
        else:
            ranges.append((n, n))
    return ranges


def merge(ranges: Iterable[Range]) -> list[Range]:
    """Union of inclusive ranges, adjacent ones joined."""
    merged: list[Range] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            if last > merged[-1][1]:
                merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


def holes(ranges: list[Range]) -> list[Range]:
    """The missing ranges between sorted, merged ranges."""
    return [(a[1] + 1, b[0] - 1) for a, b in itertools.pairwise(ranges)]
