"""Messages the broker has (PUBACK) but the server has not confirmed yet.

The server names, on the gateway's ``ack`` topic, the sequence ranges it has settled (applied,
dead-lettered or refused: durable either way). Until then a message stays in the outbox; one
unconfirmed past its deadline is sent again, the deadline growing with each attempt (capped,
jittered, so gateways that lost their messages together do not re-send in lockstep). The
server's dedup makes a re-send harmless. Only numbers are held here — the payload stays on
disk — so waiting messages cost ~100 bytes each, and their number is bounded: past the bound
the uplink sends nothing new (the backlog waits on disk, not in the broker).
"""

from __future__ import annotations

import heapq
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass

from gridsense_protocol import Kind, ProtocolError, Settled, decode, topic_for

from ..backoff import backoff_delay
from ..logs import log_event
from .outbox import OutboundMessage, Outbox

log = logging.getLogger(__name__)

CONFIRM_TIMEOUT_S = 20.0  # the first re-send, jittered to 50-100 % of it
CONFIRM_TIMEOUT_MAX_S = 300.0
MAX_UNCONFIRMED = 5000


@dataclass(slots=True)
class _Waiting:
    attempts: int  # sends so far, the first included
    due: float  # monotonic time of the next re-send


class Confirmations:
    def __init__(
        self,
        timeout_s: float = CONFIRM_TIMEOUT_S,
        timeout_max_s: float = CONFIRM_TIMEOUT_MAX_S,
        max_unconfirmed: int = MAX_UNCONFIRMED,
        rng: random.Random | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.timeout_max_s = max(timeout_s, timeout_max_s)
        self.max_unconfirmed = max_unconfirmed
        self._rng = rng
        self._waiting: dict[int, _Waiting] = {}  # seq -> state
        self._attempts: dict[int, int] = {}  # seq -> sends, for messages out for a re-send
        self._due: list[tuple[float, int]] = []  # heap; stale entries skipped when popped
        self.counters = dict.fromkeys(("confirmed", "resent"), 0)

    def sent(self, seq: int, now: float) -> None:
        """The broker has message ``seq``: wait for the server's word until a deadline."""
        attempts = self._attempts.pop(seq, 0) + 1
        due = now + backoff_delay(attempts - 1, self.timeout_s, self.timeout_max_s, self._rng)
        self._waiting[seq] = _Waiting(attempts, due)
        heapq.heappush(self._due, (due, seq))

    def confirm(self, ranges: Iterable[tuple[int, int]]) -> int:
        """The server has settled these ranges: forget them; returns how many were waiting."""
        found = 0
        waiting, attempts = self._waiting, self._attempts
        for first, last in ranges:
            if last - first < len(waiting) + len(attempts):
                for seq in range(first, last + 1):
                    attempts.pop(seq, None)
                    if waiting.pop(seq, None) is not None:
                        found += 1
            else:  # a wide range (a backlog confirmed at once): walk what we hold instead
                for seq in [s for s in attempts if first <= s <= last]:
                    del attempts[seq]
                for seq in [s for s in waiting if first <= s <= last]:
                    del waiting[seq]
                    found += 1
        self.counters["confirmed"] += found
        if len(self._due) > 4 * len(waiting) + 64:  # stale deadlines: rebuild, bounded
            self._due = [(w.due, seq) for seq, w in waiting.items()]
            heapq.heapify(self._due)
        return found

    def due(self, now: float, limit: int) -> list[int]:
        """Up to ``limit`` messages whose deadline has passed, oldest deadline first; they
        leave the waiting set (the outbox hands them out again) until sent once more."""
        out: list[int] = []
        heap = self._due
        while heap and heap[0][0] <= now and len(out) < limit:
            due, seq = heapq.heappop(heap)
            waiting = self._waiting.get(seq)
            if waiting is None or waiting.due != due:
                continue  # confirmed meanwhile, or a newer deadline
            del self._waiting[seq]
            self._attempts[seq] = waiting.attempts
            out.append(seq)
        self.counters["resent"] += len(out)
        return out

    def gone(self, seqs: Iterable[int]) -> None:
        """These are no longer in the outbox (confirmed, or dropped by a cap): stop tracking."""
        for seq in seqs:
            self._attempts.pop(seq, None)
            self._waiting.pop(seq, None)

    @property
    def room(self) -> int:
        """How many more messages may be sent before the server confirms some. Messages due
        for a re-send leave the waiting set, so their re-send always finds room (the outbox
        hands re-sends out before newer messages of their lane)."""
        return max(0, self.max_unconfirmed - len(self._waiting))

    def __len__(self) -> int:
        return len(self._waiting)


class EndToEnd:
    """The uplink's side of the server's confirmations: what a PUBACK means, what an ``ack``
    message deletes, and what goes out again.

    ``mode``: ``server`` waits for the server from the first message; ``broker`` deletes on
    the PUBACK (for a server older than end-to-end acknowledgements); ``auto`` deletes on the
    PUBACK until the server has confirmed anything once, then waits — remembered in the
    outbox, so an upgraded server turns it on by itself and no restart turns it off.
    """

    def __init__(self, gateway: str, outbox: Outbox, mode: str = "auto",
                 confirmations: Confirmations | None = None) -> None:
        if mode not in ("auto", "server", "broker"):
            raise ValueError(f"acknowledgement mode {mode!r}: expected auto, server or broker")
        self.gateway = gateway
        self.topic = topic_for(gateway, Kind.ACK)
        self.mode = mode
        self.outbox = outbox
        # Not ``or``: an empty Confirmations is falsy (it has a length).
        self.confirmations = Confirmations() if confirmations is None else confirmations
        self.counters = self.confirmations.counters
        self.counters.update(dict.fromkeys(("settled_received", "settled_invalid"), 0))
        if mode == "server":
            outbox.expect_server_confirms()

    @property
    def active(self) -> bool:
        return self.mode != "broker" and self.outbox.server_confirms

    def delivered(self, message: OutboundMessage) -> None:
        """The broker acknowledged ``message`` (PUBACK)."""
        if self.active:
            self.confirmations.sent(message.seq, time.monotonic())
        else:
            self.outbox.ack(message)

    def received(self, payload: bytes) -> bool:
        """A ``Settled`` from the server; True when it confirmed anything."""
        self.counters["settled_received"] += 1
        try:
            message = decode(self.topic, payload)
        except ProtocolError as exc:
            self.counters["settled_invalid"] += 1
            log_event(log, "settled_invalid", logging.WARNING, error=str(exc)[:300])
            return False
        if not isinstance(message, Settled) or self.mode == "broker":
            return False
        if not self.outbox.server_confirms:
            self.outbox.expect_server_confirms()
            log_event(log, "server_confirms", gateway=self.gateway)
        self.confirmations.confirm(message.ranges)
        self.outbox.confirm(message.ranges)
        return True

    def resend_due(self, limit: int) -> int:
        """Messages unconfirmed past their deadline go back to the outbox to be sent again."""
        if not self.active:
            return 0
        due = self.confirmations.due(time.monotonic(), limit)
        if not due:
            return 0
        found = set(self.outbox.resend(due))
        self.confirmations.gone(seq for seq in due if seq not in found)
        if found:
            log_event(log, "unconfirmed_resent", messages=len(found), first=min(found))
        return len(found)

    @property
    def room(self) -> int:
        return self.confirmations.room if self.active else 1 << 30
