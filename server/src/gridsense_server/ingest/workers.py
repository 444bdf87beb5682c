"""One queue and one task per effect that needs the database or the disk: messages are handled
in arrival order, in batches of whatever queued up meanwhile, and each is told when its effect
is durable — or, if it cannot be (no retry can fix it), that it failed: a dead letter."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..acks import Effect, InboundMessage
from ..counters import Counters
from ..logs import kv

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000

# Handles the decoded messages of a batch in one go (one transaction where there is one);
# outages are retried inside, so what it raises is a bug or a message it cannot take.
BatchHandler = Callable[[list[Any]], Awaitable[None]]


class BatchWorker:
    def __init__(self, name: str, effect: Effect, handle: BatchHandler, counters: Counters, *,
                 batch_size: int = 1, queue_size: int = QUEUE_SIZE,
                 warm_up: Callable[[], None] | None = None) -> None:
        self.name = name
        self.effect = effect
        self.handle = handle
        self.counters = counters
        self.batch_size = batch_size
        self.warm_up = warm_up
        # Bounded: a full queue makes the router wait, and with it the hand-off and paho.
        self.queue: asyncio.Queue[InboundMessage] = asyncio.Queue(queue_size)

    async def run(self) -> None:
        if self.warm_up is not None:
            try:
                await asyncio.to_thread(self.warm_up)
            except Exception:  # only a head start: the worker works without it
                log.exception(kv("worker_warm_up_failed", worker=self.name))
        queue = self.queue
        while True:
            batch = [await queue.get()]
            while len(batch) < self.batch_size and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await self._handle(batch)
            finally:
                for _ in batch:
                    queue.task_done()

    async def _handle(self, batch: list[InboundMessage]) -> None:
        try:
            await self.handle([message.decoded for message in batch])
        except Exception as exc:
            if len(batch) == 1:
                self._failed(batch[0], exc)
                return
            # One bad message must not sink its batch: redo them one by one.
            first = batch[0].decoded
            log.exception(kv("batch_failed", worker=self.name, messages=len(batch),
                             first_event=getattr(first, "id", None),
                             gateway=getattr(first, "gateway", None)))
            for message in batch:
                try:
                    await self.handle([message.decoded])
                except Exception as exc:
                    self._failed(message, exc)
                else:
                    self._done(message)
            return
        for message in batch:
            self._done(message)

    def _done(self, message: InboundMessage) -> None:
        message.release()
        message.done(self.effect)

    def _failed(self, message: InboundMessage, exc: Exception) -> None:
        self.counters.inc(f"{self.name}.errors")
        decoded = message.decoded
        log.exception(kv("message_handling_failed", worker=self.name,
                         event=getattr(decoded, "id", None),
                         gateway=getattr(decoded, "gateway", None),
                         kind=getattr(getattr(decoded, "kind", None), "value", None)))
        message.release()
        message.failed(self.effect, f"{self.name}: {exc!r}"[:500])
