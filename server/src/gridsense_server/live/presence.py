"""Who has a live stream open on which server process, kept in the database.

A page on the "app" channel is delivered through the stream; with several processes the phone
may be connected to another one (the relay carries the page there), so "delivered" asks here
whether the person has a stream open anywhere. Each process writes its own rows: at once when
its set of connected people changes, and every ``REFRESH_S`` to show it is alive; a row older
than ``STALE_S`` belongs to a process that died and counts for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import utc_now

from ..counters import Counters
from ..db.cluster_models import LivePresence
from ..logs import kv

log = logging.getLogger(__name__)
REFRESH_S = 10.0
STALE_S = 35.0
SETTLE_S = 0.2  # a burst of connects is written once


class Presence:
    def __init__(self, factory: sessionmaker[Session], holder: str, counters: Counters,
                 people: Callable[[], dict[str, int]],
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.factory = factory
        self.holder = holder
        self.counters = counters
        self.people = people  # username -> streams open here (the hub's own count)
        self.clock = clock
        self._changed: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def changed(self) -> None:
        """Someone connected or left here (from the event loop or any thread)."""
        loop, changed = self._loop, self._changed
        if loop is not None and changed is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(changed.set)

    def write(self) -> None:
        """Replace this process's rows with who is connected now (blocking)."""
        now, people = self.clock(), dict(self.people())
        with self.factory.begin() as session:
            session.execute(delete(LivePresence).where(LivePresence.holder == self.holder))
            session.add_all(LivePresence(holder=self.holder, username=user, streams=count,
                                         seen_at=now) for user, count in people.items())
            # Rows of processes that died long ago: nobody else would ever remove them.
            session.execute(delete(LivePresence).where(
                LivePresence.seen_at < now - timedelta(seconds=STALE_S * 10)))

    def elsewhere(self, username: str) -> bool:
        """Has ``username`` a live stream open on another process that is alive? Blocking."""
        since = self.clock() - timedelta(seconds=STALE_S)
        with self.factory() as session:
            found = session.scalar(select(func.count()).select_from(LivePresence).where(
                LivePresence.username == username, LivePresence.holder != self.holder,
                LivePresence.seen_at >= since, LivePresence.streams > 0))
        return bool(found)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        while True:
            try:
                await asyncio.to_thread(self.write)
            except Exception as exc:
                self.counters.inc("live.presence_errors")
                log.warning(kv("live_presence_write_failed", error=str(exc)[:200]))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), REFRESH_S)
                await asyncio.sleep(SETTLE_S)
            self._changed.clear()

    def forget(self) -> None:
        """A clean stop: this process's rows go at once."""
        with self.factory.begin() as session:
            session.execute(delete(LivePresence).where(LivePresence.holder == self.holder))
