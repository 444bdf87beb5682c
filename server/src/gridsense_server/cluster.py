"""What lets several server processes share one database (docs/scaling.md, "Several workers").

- Leader leases for the loops only one process may run (``LEASED``); every process runs the
  rest, the work split by row claims (escalation steps, deliveries) or by the broker (ingest
  through one share group).
- On PostgreSQL: the live-stream relay (LISTEN/NOTIFY) and the presence rows, so an incident
  change or a page made by one process reaches the phone connected to another. On SQLite (one
  process) the live stream stays in process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from .counters import Counters
from .db.leases import Leadership, holder_id
from .live.hub import LiveHub
from .live.presence import Presence
from .live.relay import PgRelay
from .notify.sender import NotificationSender
from .tasks import cancel_and_wait

CREDENTIAL_RESYNC = "credential-resync"
CONFIG_PUSH = "config-push"
AUDIT_RETENTION = "audit-retention"
AUTH_UPKEEP = "auth-upkeep"
COMMISSIONING = "commissioning"
DEAD_LETTER_REPLAY = "dead-letter-replay"
PASS_RECONCILE = "pass-reconcile"  # pass uses added up across gateways: one pass_overuse each
LEASED = [CREDENTIAL_RESYNC, CONFIG_PUSH, AUDIT_RETENTION, AUTH_UPKEEP, COMMISSIONING,
          DEAD_LETTER_REPLAY, PASS_RECONCILE]


def shared_database(url: str) -> bool:
    """Can other server processes share this database (PostgreSQL), or is it SQLite's?"""
    return make_url(url).get_backend_name() == "postgresql"


@dataclass
class Cluster:
    holder: str
    leadership: Leadership
    relay: PgRelay | None = None
    presence: Presence | None = None
    _tasks: tuple[asyncio.Task[None], ...] = ()

    @classmethod
    def wire(cls, url: str, factory: sessionmaker[Session], hub: LiveHub,
             notifier: NotificationSender, counters: Counters) -> Cluster:
        holder = holder_id()
        cluster = cls(holder, Leadership(factory, holder, list(LEASED), counters))
        if shared_database(url):
            cluster.relay = hub.relay = PgRelay(url, counters, hub.deliver_remote, holder,
                                                on_gap=hub.resync)
            cluster.presence = notifier.presence = Presence(factory, holder, counters,
                                                            hub.people)
            hub.on_change = cluster.presence.changed
        return cluster

    async def start(self) -> None:
        tasks = [asyncio.create_task(self.leadership.run(), name="leases")]
        if self.relay is not None:
            await self.relay.start()
        if self.presence is not None:
            tasks.append(asyncio.create_task(self.presence.run(), name="live-presence"))
        self._tasks = tuple(tasks)

    def lead(self, name: str, make: Callable[[], Coroutine[Any, Any, None]]
             ) -> asyncio.Task[None]:
        """A task running ``make()`` wherever the lease ``name`` is held."""
        return asyncio.create_task(self.leadership.keep_running(name, make), name=f"lead:{name}")

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        if self.relay is not None:
            await self.relay.stop()
        # A clean stop hands over at once instead of after the lease or presence expires.
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.leadership.release_all)
        if self.presence is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.presence.forget)
