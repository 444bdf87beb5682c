"""In-process pub/sub for WebSocket clients: incident changes fan out to whoever owns the grid.

Publishing never waits: each subscriber has a bounded queue, and a slow client loses its
oldest undelivered events (counted) instead of slowing ingest or growing memory; it can
re-read the incident list to catch up.

With several server processes, a ``relay`` (live/relay.py) carries each event to the others,
which fan it out to their own streams with ``deliver_remote``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..counters import Counters
from ..registry.viewers import Viewer

DEFAULT_QUEUE_SIZE = 1000


class Relay(Protocol):
    def send(self, message: dict[str, Any]) -> None: ...


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


@dataclass(eq=False)
class Subscription:
    viewer: Viewer
    maxsize: int
    id: int = 0
    dropped: int = 0
    _events: deque[dict[str, Any]] = field(default_factory=deque)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    # The loop the stream reads on. Publishers may run in worker threads (a synchronous API
    # route acting on an incident): asyncio.Event is not thread-safe, so they wake it there.
    _loop: asyncio.AbstractEventLoop | None = None

    def offer(self, event: dict[str, Any]) -> bool:
        """Queue an event (from any thread); False when the oldest one had to be dropped to
        make room."""
        kept = True
        if len(self._events) >= self.maxsize:
            with contextlib.suppress(IndexError):  # the reader may have emptied it meanwhile
                self._events.popleft()
            self.dropped += 1
            kept = False
        self._events.append(event)
        if self._loop is None or _running_loop() is self._loop:
            self._ready.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody reads
                self._loop.call_soon_threadsafe(self._ready.set)
        return kept

    async def next(self) -> dict[str, Any]:
        while not self._events:
            self._ready.clear()
            await self._ready.wait()
        return self._events.popleft()

    def __len__(self) -> int:
        return len(self._events)


class LiveHub:
    def __init__(self, counters: Counters, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.counters = counters
        self.queue_size = queue_size
        self._subscriptions: dict[int, Subscription] = {}
        # A page goes to one person: found without a scan of every open stream.
        self._by_user: dict[str, dict[int, Subscription]] = {}
        self._ids = itertools.count(1)
        self.relay: Relay | None = None  # set when other server processes share the database
        self.on_change: Callable[[], None] | None = None  # who is connected changed (presence)
        # Another process says a person's sessions may have ended (a logout there).
        self.on_recheck: Callable[[str], None] | None = None

    def subscribe(self, viewer: Viewer) -> Subscription:
        sub = Subscription(viewer, self.queue_size, id=next(self._ids), _loop=_running_loop())
        self._subscriptions[sub.id] = sub
        self._by_user.setdefault(viewer.username, {})[sub.id] = sub
        self.counters.inc("live.subscribed")
        if self.on_change is not None:
            self.on_change()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscriptions.pop(sub.id, None)
        mine = self._by_user.get(sub.viewer.username)
        if mine is not None:
            mine.pop(sub.id, None)
            if not mine:
                del self._by_user[sub.viewer.username]
        if self.on_change is not None:
            self.on_change()

    def people(self) -> dict[str, int]:
        """Who has streams open here, and how many each."""
        return {user: len(subs) for user, subs in list(self._by_user.items())}

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def publish(self, grid_id: str | None, event: dict[str, Any], *, live: bool = True) -> int:
        """Deliver to every subscriber who sees ``grid_id``; returns how many got it here.

        ``live=False`` (a backfilled event: old news after an outage) reaches only viewers
        who see every grid — the control room — and pages no one in the grid.
        """
        return self._route({"k": "grid", "g": grid_id, "live": live, "e": event})

    def publish_any(self, grids: frozenset[str], event: dict[str, Any]) -> int:
        """Deliver to every subscriber who sees at least one of ``grids`` (a gateway serves
        points in several grids; each viewer gets the event once). No grids: control only."""
        return self._route({"k": "any", "gs": sorted(grids), "e": event})

    def publish_user(self, username: str, event: dict[str, Any]) -> int:
        """Deliver to every open stream of one person (a page on the "app" channel)."""
        return self._route({"k": "user", "u": username, "e": event})

    def _route(self, message: dict[str, Any]) -> int:
        if self.relay is not None:
            self.relay.send(message)
        return self.deliver_remote(message)

    def recheck_elsewhere(self, username: str) -> None:
        """Tell the other processes to recheck ``username``'s streams (no-op without relay)."""
        if self.relay is not None:
            self.relay.send({"k": "recheck", "u": username})

    def deliver_remote(self, message: dict[str, Any]) -> int:
        """Fan out one routed message (this process's own, or another's through the relay)
        to the streams here; how many got it."""
        if message["k"] == "recheck":
            if self.on_recheck is not None:
                self.on_recheck(str(message["u"]))
            return 0
        kind, event = message["k"], message["e"]
        if kind == "user":
            return self._to_user(str(message["u"]), event)
        if kind == "any":
            grids = frozenset(message["gs"])
            return self._fan_out(event, lambda viewer: viewer.grids is None
                                 or not viewer.grids.isdisjoint(grids))
        grid_id, live = message["g"], bool(message["live"])
        return self._fan_out(event, lambda viewer: viewer.sees_grid(grid_id) and (
            live or viewer.grids is None))

    def _fan_out(self, event: dict[str, Any], wants: Callable[[Viewer], bool]) -> int:
        delivered = 0
        for sub in list(self._subscriptions.values()):
            if not wants(sub.viewer):
                continue
            if not sub.offer(event):
                self.counters.inc("live.dropped_events")
            delivered += 1
        self.counters.inc("live.published_events")
        return delivered

    def resync(self) -> int:
        """Tell every stream here to re-read what it shows (events from other processes may
        have been missed): the ``connected`` message clients already act on after a reconnect."""
        return self._fan_out({"type": "connected", "reason": "relay_gap"}, lambda _viewer: True)

    def _to_user(self, username: str, event: dict[str, Any]) -> int:
        delivered = 0
        for sub in list(self._by_user.get(username, {}).values()):
            if not sub.offer(event):
                self.counters.inc("live.dropped_events")
            delivered += 1
        return delivered
