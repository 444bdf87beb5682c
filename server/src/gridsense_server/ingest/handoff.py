"""A bounded hand-off from paho's network thread to the asyncio loop: the producer blocks
while it is full, and the loop is woken only when it waits (a busy loop costs the producer no
system call per message). The producer may hand over many items at once (one lock round for
a whole read of the socket)."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    def __init__(self, capacity: int, loop: asyncio.AbstractEventLoop) -> None:
        self.capacity = capacity
        self._loop = loop
        self._items: deque[T] = deque()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # notified when the loop took items
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: T, timeout: float) -> bool:
        """From any thread: wait up to ``timeout`` for room; False if there was none."""
        return self.put_many([item], timeout) == 1

    def put_many(self, items: list[T], timeout: float) -> int:
        """From any thread: as many of ``items`` as there is room for, in order, waiting up to
        ``timeout`` for room each time it runs out; how many were taken."""
        taken = 0
        with self._room:
            while taken < len(items):
                room = self.capacity - len(self._items)
                if room <= 0:
                    if not self._room.wait(timeout):
                        break
                    continue
                count = min(room, len(items) - taken)
                self._items.extend(items[taken:taken + count])
                taken += count
                waiter, self._waiter = self._waiter, None
                if waiter is not None:  # the loop waits for items: wake it
                    self._loop.call_soon_threadsafe(_wake, waiter)
        return taken

    async def get_batch(self, max_items: int) -> list[T]:
        """From the loop: everything available (up to ``max_items``), waiting for at least one."""
        while True:
            with self._lock:
                if self._items:
                    count = min(len(self._items), max_items)
                    batch = [self._items.popleft() for _ in range(count)]
                    self._room.notify()
                    break
                waiter = self._waiter = self._loop.create_future()
            await waiter
        return batch

    def __len__(self) -> int:
        return len(self._items)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
