"""A bounded hand-off from paho's network thread to the asyncio loop: the producer blocks
while it is full, and the loop is woken only when it waits (a busy loop costs the producer no
system call per message)."""

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
        self._slots = threading.Semaphore(capacity)
        self._lock = threading.Lock()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: T, timeout: float) -> bool:
        """From any thread: wait up to ``timeout`` for room; False if there was none."""
        if not self._slots.acquire(timeout=timeout):
            return False
        with self._lock:
            self._items.append(item)
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._loop.call_soon_threadsafe(_wake, waiter)
        return True

    async def get_batch(self, max_items: int) -> list[T]:
        """From the loop: everything available (up to ``max_items``), waiting for at least one."""
        while True:
            with self._lock:
                if self._items:
                    count = min(len(self._items), max_items)
                    batch = [self._items.popleft() for _ in range(count)]
                    break
                waiter = self._waiter = self._loop.create_future()
            await waiter
        self._slots.release(count)
        return batch

    def __len__(self) -> int:
        return len(self._items)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
