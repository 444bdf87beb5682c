"""Live streams waiting on their session: a logout in this process wakes its user's streams at
once to recheck; with ``relay`` set (several server processes on PostgreSQL) the others are
told too and wake theirs (``wake``); each stream's periodic recheck catches the rest."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable


class SessionWatch:
    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.relay: Callable[[str], None] | None = None  # tells the other server processes

    def watch(self, username: str) -> asyncio.Event:
        """Call from the event loop; the event is set when the user's sessions may have ended."""
        self._loop = asyncio.get_running_loop()
        event = asyncio.Event()
        with self._lock:
            self._events.setdefault(username, set()).add(event)
        return event

    def forget(self, username: str, event: asyncio.Event) -> None:
        with self._lock:
            events = self._events.get(username)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._events[username]

    def recheck(self, username: str) -> None:
        """From any thread (the request handlers run in the thread pool)."""
        self.wake(username)
        if self.relay is not None:
            self.relay(username)

    def wake(self, username: str) -> None:
        """Wake this process's streams of ``username`` (from any thread)."""
        with self._lock:
            events = list(self._events.get(username, ()))
        if events and self._loop is not None:
            for event in events:
                self._loop.call_soon_threadsafe(event.set)
