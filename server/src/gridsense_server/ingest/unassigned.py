"""The points each gateway reports that the registry does not assign to anyone: kept in memory
(capped per gateway and in all), written to the database every few seconds for the installer's
list (``GET /api/v1/unassigned-points``, ``gridsense-server unassigned list``).

Memory, not a database read per message: ingest asks ``note`` on the hot path. The list is
re-read after every registry reload (points the registry now assigns leave it; another
process's points join it), so several server processes share one cap, roughly.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from ..counters import Counters
from ..db.unassigned import Key, Sighting, UnassignedStore
from ..logs import kv
from ..registry.directory import PointDirectory
from ..tasks import cancel_and_wait

log = logging.getLogger(__name__)

FLUSH_S = 2.0
# However many gateways report made-up ids, this many (gateway, point) pairs at most are kept.
MAX_TRACKED = 100_000


class UnassignedPoints:
    def __init__(self, store: UnassignedStore, directory: PointDirectory, counters: Counters,
                 per_gateway: int) -> None:
        self.store = store
        self.directory = directory
        self.counters = counters
        self.per_gateway = per_gateway
        self._known: dict[str, set[str]] = {}  # gateway → its unassigned points
        self._tracked = 0
        self._pending: dict[Key, Sighting] = {}  # heard of since the last write
        self._tasks: list[asyncio.Task[None]] = []

    # -- hot path (the asyncio loop) ---------------------------------------------------------

    def note(self, gateway: str, sightings: list[tuple[str, datetime]]) -> str | None:
        """Keep these unregistered points of ``gateway`` — (point, device time), one per
        reading or event; returns why not (the cap) without keeping any, or None."""
        known = self._known.get(gateway)
        new = sorted({p for p, _ in sightings if known is None or p not in known})
        if new:
            have = len(known) if known is not None else 0
            if have + len(new) > self.per_gateway:
                return (f"unassigned_cap: gateway {gateway} already reports {have} points the "
                        f"registry does not assign (cap {self.per_gateway}); "
                        f"{', '.join(new[:5])} not kept — register them, then replay")
            if self._tracked + len(new) > MAX_TRACKED:
                return (f"unassigned_cap: {self._tracked} unassigned points kept in all "
                        f"(cap {MAX_TRACKED}); {', '.join(new[:5])} not kept")
            if known is None:
                known = self._known[gateway] = set()
            known.update(new)
            self._tracked += len(new)
            self.counters.inc("ingest.unassigned_points_new", len(new))
            for point in new:
                log.warning(kv("unassigned_point", gateway=gateway, point=point,
                               kept=len(known), cap=self.per_gateway))
        pending = self._pending
        for point, ts in sightings:
            sighting = pending.get((gateway, point))
            if sighting is None:
                pending[(gateway, point)] = Sighting(ts, ts, 1)
            else:
                sighting.count += 1
                if ts < sighting.first_seen:
                    sighting.first_seen = ts
                if ts > sighting.last_seen:
                    sighting.last_seen = ts
        self.counters.inc("ingest.unassigned_messages")
        return None

    def points_of(self, gateway: str) -> set[str]:
        return set(self._known.get(gateway, ()))

    # -- background --------------------------------------------------------------------------

    async def start(self) -> None:
        await self.resync()
        self._tasks = [asyncio.create_task(self._flush_loop(), name="unassigned-points")]

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []
        try:
            await self.flush()
        except Exception:
            log.exception(kv("unassigned_points_flush_failed"))

    async def flush(self) -> None:
        """Write what was heard of since the last write. A failure keeps it for the next try
        (no retry loop here: the list must never hold up a stop)."""
        pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            await asyncio.to_thread(self.store.add, pending)
        except Exception:
            self.counters.inc("unassigned_points.write_errors")
            self._merge_back(pending)  # bounded: its keys are tracked ones
            raise

    async def resync(self) -> None:
        """After a registry reload: write what is pending, then take the list as the
        database has it (the registry's new points gone, other processes' points in)."""
        await self.flush()
        rows = await asyncio.to_thread(self.store.keys)
        known: dict[str, set[str]] = {}
        for gateway, point in rows | self._pending.keys():
            if point not in self.directory:
                known.setdefault(gateway, set()).add(point)
        self._known = known
        self._tracked = sum(len(points) for points in known.values())

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            try:
                await self.flush()
            except Exception:
                log.exception(kv("unassigned_points_flush_failed"))

    def _merge_back(self, pending: dict[Key, Sighting]) -> None:
        for key, old in pending.items():
            newer = self._pending.get(key)
            if newer is None:
                self._pending[key] = old
            else:
                newer.count += old.count
                newer.first_seen = min(newer.first_seen, old.first_seen)
