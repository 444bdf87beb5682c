"""Leader leases: a loop that one server process only may run (credential resync, config pushes,
pruning) runs where its lease is held. A lease lasts ``ttl_s`` and is renewed every third of it;
a process that dies stops renewing, and another takes it over once it has expired. Holders'
clocks must agree (NTP), as they must for escalation due times already.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import utc_now

from ..counters import Counters
from ..logs import kv
from .cluster_models import Lease

log = logging.getLogger(__name__)
DEFAULT_TTL_S = 15.0
FOLLOW_S = 1.0  # how soon a loop starts or stops after its lease was taken or lost


def holder_id() -> str:
    """This process, as leases, presence rows and relayed events name it."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"[:120]


def take(factory: sessionmaker[Session], name: str, holder: str, ttl_s: float,
         now: datetime) -> bool:
    """Take or renew the lease ``name`` for ``holder``; False while another holds it."""
    until = now + timedelta(seconds=ttl_s)
    try:
        with factory.begin() as session:
            row = session.get(Lease, name, with_for_update=True)
            if row is None:
                session.add(Lease(name=name, holder=holder, expires_at=until))
                return True
            if row.holder != holder and row.expires_at > now:
                return False
            row.holder, row.expires_at = holder, until
            return True
    except IntegrityError:  # another process created the row first: it holds the lease
        return False


def release(factory: sessionmaker[Session], name: str, holder: str) -> None:
    """Give the lease up at once (a clean stop), so another process need not wait it out."""
    with factory.begin() as session:
        session.execute(update(Lease).where(Lease.name == name, Lease.holder == holder)
                        .values(expires_at=utc_now()))


class Leadership:
    """Holds (or keeps trying for) a set of named leases; ``holds(name)`` says where we lead.

    Looks again every ``ttl_s / 3``. If the database cannot be reached, leadership is given up
    at once here (the lease may expire meanwhile, and another process take it over).
    """

    def __init__(self, factory: sessionmaker[Session], holder: str, names: list[str],
                 counters: Counters, ttl_s: float = DEFAULT_TTL_S,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.factory = factory
        self.holder = holder
        self.names = names
        self.counters = counters
        self.ttl_s = ttl_s
        self.clock = clock
        self._held: set[str] = set()

    def holds(self, name: str) -> bool:
        return name in self._held

    def leading(self, name: str) -> Callable[[], bool]:
        return lambda: name in self._held

    def renew(self) -> set[str]:
        """One pass (blocking): take or renew every lease; the ones held now."""
        now = self.clock()
        held = {name for name in self.names
                if take(self.factory, name, self.holder, self.ttl_s, now)}
        for name in held - self._held:
            self.counters.inc("leases.taken")
            log.info(kv("lease_taken", lease=name, holder=self.holder))
        for name in self._held - held:
            self.counters.inc("leases.lost")
            log.warning(kv("lease_lost", lease=name, holder=self.holder))
        self._held = held
        return held

    async def run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.renew)
            except DBAPIError as exc:
                if self._held:
                    log.warning(kv("leases_given_up", leases=",".join(sorted(self._held)),
                                   error=str(exc.orig)[:200]))
                self._held = set()
                self.counters.inc("leases.errors")
            await asyncio.sleep(self.ttl_s / 3)

    def release_all(self) -> None:
        for name in sorted(self._held):
            release(self.factory, name, self.holder)
        self._held = set()

    async def keep_running(self, name: str,
                           make: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run the loop ``make()`` while the lease ``name`` is held here; cancel it when the
        lease is lost, start it again when it comes back."""
        task: asyncio.Task[None] | None = None
        try:
            while True:
                if name in self._held and (task is None or task.done()):
                    task = asyncio.create_task(make(), name=f"leader:{name}")
                elif name not in self._held and task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                    task = None
                await asyncio.sleep(FOLLOW_S)
        finally:
            if task is not None:
                task.cancel()
