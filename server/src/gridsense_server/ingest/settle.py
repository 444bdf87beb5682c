"""The last durable step before an ack: record the sequence numbers of messages whose effects
are durable (one transaction per round: group commit), note them as settled, then let their
ledgers release the acks. A database outage stops acks, and with them ingest; it loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError

from ..acks import InboundMessage, SettledRanges
from ..backoff import Backoff
from ..counters import Counters
from ..db.retry import is_transient
from ..db.sequences import SequenceStore
from ..logs import kv
from ..tasks import cancel_and_wait

log = logging.getLogger(__name__)


class Settler:
    def __init__(self, store: SequenceStore, counters: Counters) -> None:
        self.store = store
        self.counters = counters
        self.ranges = SettledRanges()
        # Told of a message whose sequence no retry can record (the dead letters take it).
        self.on_refused: Callable[[InboundMessage, str], None] | None = None
        # Told of every settled message, whatever its outcome (the end-to-end acks).
        self.on_settled: Callable[[InboundMessage], None] | None = None
        self._waiting: list[InboundMessage] = []
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def submit(self, message: InboundMessage) -> None:
        """A message whose effects are all durable: record its seq unless an effect did."""
        if not message.needs_recording:
            self._settled(message)
            return
        self._waiting.append(message)
        self._idle.clear()
        self._ready.set()

    def _settled(self, message: InboundMessage, *, release: bool = True) -> None:
        # Every message, refused ones too, ends here once: the two outcomes add up to what
        # was received, which is how a fuzz run proves that nothing went uncounted.
        sequence = message.sequence
        if message.lost:
            self.counters.inc("ingest.outcome.dead_lettered")
        else:
            self.counters.inc("ingest.outcome.applied")
            if sequence is not None:
                self.ranges.add(*sequence)
        if self.on_settled is not None:
            self.on_settled(message)
        assert message.ledger is not None
        message.ledger.settled(message, release=release)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ingest-settler")

    async def drain(self) -> None:
        """Wait until everything submitted so far is recorded and released."""
        await self._idle.wait()

    async def stop(self) -> None:
        await cancel_and_wait([self._task])
        self._task = None

    def __len__(self) -> int:
        return len(self._waiting)

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            batch, self._waiting = self._waiting, []
            if batch:
                await self._record(batch)
                for message in batch:
                    self._settled(message, release=False)
                # Acks leave once per ledger and round: in arrival order, as one hand-off.
                for ledger in {id(m.ledger): m.ledger for m in batch}.values():
                    assert ledger is not None
                    ledger.release()
            if not self._waiting:
                self._idle.set()

    async def _record(self, batch: list[InboundMessage]) -> None:
        received = [seq for m in batch if (seq := m.sequence) is not None]
        try:
            redelivered = await self._record_retrying(received)
        except Exception as exc:
            # Retrying cannot fix it (the protocol's bounds should make this unreachable):
            # record one by one, so only the message(s) at fault lose their record.
            self.counters.inc("ingest.sequence_errors")
            log.error(kv("sequence_record_failed", messages=len(received), error=repr(exc)[:300]))
            redelivered = await self._record_each(batch)
        total = sum(redelivered.values())
        if total:
            self.counters.inc("ingest.redelivered", total)
            for gateway, count in redelivered.items():
                if count:
                    log.info(kv("messages_redelivered", gateway=gateway, count=count))
        self.counters.inc("ingest.settled", len(batch))

    async def _record_retrying(self, received: list[tuple[str, int]]) -> dict[str, int]:
        """Record, retrying while the database is unreachable or busy (acks wait, the broker
        holds the rest); any other error is raised at once."""
        backoff = Backoff(initial_s=0.2, cap_s=10.0)
        while True:
            try:
                return await asyncio.to_thread(self.store.record, received)
            except DBAPIError as exc:
                if not is_transient(exc):
                    raise
                self.counters.inc("ingest.sequence_retries")
                log.warning(kv("sequence_record_retry", messages=len(received),
                               error=str(exc.orig)[:200]))
            await asyncio.sleep(backoff.next_delay())

    async def _record_each(self, batch: list[InboundMessage]) -> dict[str, int]:
        redelivered: Counter[str] = Counter()
        for message in batch:
            sequence = message.sequence
            if sequence is None:
                continue
            try:
                redelivered.update(await self._record_retrying([sequence]))
            except Exception as exc:
                self.counters.inc("ingest.sequence_refused")
                log.error(kv("sequence_refused", gateway=sequence[0], seq=sequence[1],
                             error=repr(exc)[:300]))
                message.lost = True  # settled all the same: the checker reports it missing
                if self.on_refused is not None:
                    self.on_refused(message, f"sequence not storable: {exc!r}"[:500])
        return dict(redelivered)
