"""Live streams waiting on their session: a logout in this process wakes its user's streams at
once to recheck; other processes' logouts are caught by each stream's periodic recheck."""

from __future__ import annotations

import asyncio
import threading


class SessionWatch:
    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

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
        with self._lock:
            events = list(self._events.get(username, ()))
        if events and self._loop is not None:
            for event in events:
                self._loop.call_soon_threadsafe(event.set)
