"""The last durable step before an ack: record the sequence numbers of messages whose effects
are durable (one transaction per round: group commit), note them as settled, then let their
ledgers release the acks. A database outage stops acks, and with them ingest; it loses nothing.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import DBAPIError

from ..acks import InboundMessage, SettledRanges
from ..backoff import Backoff
from ..counters import Counters
from ..db.sequences import SequenceStore
from ..logs import kv
from ..tasks import cancel_and_wait

log = logging.getLogger(__name__)


class Settler:
    def __init__(self, store: SequenceStore, counters: Counters) -> None:
        self.store = store
        self.counters = counters
        self.ranges = SettledRanges()
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

    def _settled(self, message: InboundMessage) -> None:
        sequence = message.sequence
        if sequence is not None and not message.lost:
            self.ranges.add(*sequence)
        assert message.ledger is not None
        message.ledger.settled(message)

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
                    self._settled(message)
            if not self._waiting:
                self._idle.set()

    async def _record(self, batch: list[InboundMessage]) -> None:
        received = [seq for m in batch if (seq := m.sequence) is not None]
        backoff = Backoff(initial_s=0.2, cap_s=10.0)
        while True:
            try:
                redelivered = await asyncio.to_thread(self.store.record, received)
                break
            except DBAPIError as exc:
                # Database down or busy: retry (acks wait, the broker holds the rest).
                self.counters.inc("ingest.sequence_retries")
                log.warning(kv("sequence_record_retry", messages=len(received),
                               error=str(exc.orig)[:200]))
            except Exception:
                self.counters.inc("ingest.sequence_errors")
                log.exception(kv("sequence_record_failed", messages=len(received)))
            await asyncio.sleep(backoff.next_delay())
        total = sum(redelivered.values())
        if total:
            self.counters.inc("ingest.redelivered", total)
            for gateway, count in redelivered.items():
                if count:
                    log.info(kv("messages_redelivered", gateway=gateway, count=count))
        self.counters.inc("ingest.settled", len(batch))
