"""The ingest side of dead letters: messages refused or failed for good are stored (one
transaction per round) before their ack; stored ones marked for replay are fed back through
decode and the same routing."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from functools import partial

from gridsense_protocol import PREFIX, ProtocolError, decode, is_valid_id

from ..acks import DEAD_LETTER_ROW, InboundMessage
from ..counters import Counters
from ..db.dead_letters import DeadLetterStore, new_dead_letter
from ..db.retry import retry_transient
from ..logs import kv
from ..tasks import cancel_and_wait
from .classify import invalid_reason, reason_key
from .handoff import Handoff

log = logging.getLogger(__name__)

# Waiting to be stored. Unacknowledged messages are bounded by the brokers' Receive Maximum
# already; this is the second bound: beyond it a dead letter is counted, logged and not kept.
MAX_WAITING = 10_000
REPLAY_POLL_S = 2.0
REPLAY_BATCH = 100


def gateway_of(topic: str) -> str | None:
    """The gateway a topic names, if it names a valid one (refused topics may not)."""
    parts = topic.split("/")
    prefix = PREFIX.rstrip("/").split("/")
    if len(parts) > len(prefix) and parts[:len(prefix)] == prefix:
        name = parts[len(prefix)]
        return name if is_valid_id(name) else None
    return None


class DeadLetterSink:
    def __init__(self, store: DeadLetterStore, counters: Counters) -> None:
        self.store = store
        self.counters = counters
        self._replaying: set[int] = set()  # ids handed back to ingest, not settled yet
        self._replays_settled: list[int] = []  # ids whose replay settled: to remove
        # (message, reason, whether its ack waits for the row)
        self._waiting: deque[tuple[InboundMessage, str, bool]] = deque()
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.replay_into: Handoff[InboundMessage] | None = None
        self._logged = 0
        self.last_arrival: float | None = None  # monotonic: /healthz says "degraded" a while

    def add(self, message: InboundMessage, reason: str) -> None:
        """Set ``message`` aside; its ``done(DEAD_LETTER_ROW)`` follows once stored."""
        self._queue(message, reason, True)

    def keep(self, message: InboundMessage, reason: str) -> None:
        """Set aside a message that settles without waiting for the row (the settle step)."""
        self._queue(message, reason, False)

    def _queue(self, message: InboundMessage, reason: str, acks_wait: bool) -> None:
        self.last_arrival = time.monotonic()
        self.counters.inc("dead_letters.received")
        self.counters.inc(f"dead_letters.reason.{reason_key(reason)}")
        if len(self._waiting) >= MAX_WAITING:
            self.counters.inc("dead_letters.not_kept")
            log.error(kv("dead_letter_not_kept", topic=message.topic, reason=reason[:200]))
            if acks_wait:
                message.done(DEAD_LETTER_ROW)
            return
        self._waiting.append((message, reason, acks_wait))
        self._ready.set()

    def start(self, *, replay: bool = True) -> None:
        """``replay=False``: the replay loop (``replay_loop``) is run by whoever leads it among
        several server processes (each would otherwise feed the same letters in again)."""
        self._tasks = [asyncio.create_task(self._store_loop(), name="dead-letters")]
        if replay:
            self._tasks.append(asyncio.create_task(self.replay_loop(), name="dead-letter-replay"))

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []
        if self._replays_settled:  # else replayed again at the next start: harmless, slower
            settled, self._replays_settled = self._replays_settled, []
            await asyncio.to_thread(self.store.remove, settled)

    async def _store_loop(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            batch = list(self._waiting)
            self._waiting.clear()
            if batch:
                await self._store(batch)

    async def _store(self, batch: list[tuple[InboundMessage, str, bool]]) -> None:
        letters = [new_dead_letter(m.topic, _gateway(m), reason, m.payload)
                   for m, reason, _ in batch]
        try:
            dropped = await retry_transient(lambda: self.store.add(letters), self.counters,
                                            "dead_letters")
        except Exception:
            # Retrying cannot store them: counted and logged, acknowledged all the same.
            self.counters.inc("dead_letters.store_errors", len(batch))
            log.exception(kv("dead_letters_not_stored", messages=len(batch)))
            dropped = 0
        self.counters.inc("dead_letters.stored", len(batch))
        if dropped:
            self.counters.inc("dead_letters.dropped_by_cap", dropped)
        for message, reason, acks_wait in batch:
            self._logged += 1
            if self._logged <= 10 or self._logged % 1000 == 0:  # a flood must not flood the log
                log.warning(kv("message_dead_lettered", topic=message.topic,
                               gateway=_gateway(message), reason=reason[:300],
                               bytes=len(message.payload), seen=self._logged))
            if acks_wait:
                message.done(DEAD_LETTER_ROW)

    async def replay_loop(self) -> None:
        while True:
            await asyncio.sleep(REPLAY_POLL_S)
            try:
                await self.replay_requested()
            except Exception:
                log.exception(kv("dead_letter_replay_failed"))

    async def replay_requested(self) -> int:
        """Feed the dead letters marked for replay back in. Each leaves the store once its
        replay has settled — applied, or dead-lettered again with its new reason — so a crash
        in between replays it again at the next start (a message applied twice is recognised
        by its sequence number)."""
        if self.replay_into is None:
            return 0
        if self._replays_settled:
            settled, self._replays_settled = self._replays_settled, []
            await asyncio.to_thread(self.store.remove, settled)
            self._replaying.difference_update(settled)
        room = REPLAY_BATCH - len(self._replaying)
        if room <= 0:
            return 0
        letters = await asyncio.to_thread(self.store.marked_for_replay, room,
                                          frozenset(self._replaying))
        for letter in letters:
            message = _redecode(letter.topic, letter.payload)
            message.on_settled = partial(self._replays_settled.append, letter.id)
            self._replaying.add(letter.id)
            # Waits (in a thread) while the hand-off is full: live traffic goes first.
            while not await asyncio.to_thread(self.replay_into.put, message, 1.0):
                pass
        if letters:
            self.counters.inc("dead_letters.replayed", len(letters))
            log.info(kv("dead_letters_replayed", count=len(letters)))
        return len(letters)


def _redecode(topic: str, payload: bytes) -> InboundMessage:
    try:
        return InboundMessage(decode(topic, payload), None, topic, payload)
    except ProtocolError as exc:
        reason = f"{invalid_reason(exc, len(payload))}: {exc}"
        return InboundMessage(None, None, topic, payload, reason)


def _gateway(message: InboundMessage) -> str | None:
    decoded = message.decoded
    return decoded.gateway if decoded is not None else gateway_of(message.topic)
