"""Security refusals from hot paths: queued in memory, written in batches by a background task.

``refuse`` is cheap and never blocks or raises (safe from paho's thread or ingest's loop): it
appends to a bounded deque; when full, the refusal is counted as dropped instead, so a flood of
refusals (one hostile gateway) cannot grow memory or starve ingest of the database.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ..counters import Counters
from ..logs import kv
from .log import entry

log = logging.getLogger(__name__)
FLUSH_EVERY_S = 1.0


class RefusalSink:
    def __init__(self, factory: sessionmaker[Session], counters: Counters,
                 max_queued: int = 10_000) -> None:
        self._factory = factory
        self._counters = counters
        self._queue: deque[Any] = deque()
        self._max = max_queued
        self._lock = threading.Lock()

    def refuse(self, actor: str, action: str, target: str, detail: str | dict[str, Any] = "",
               address: str = "") -> None:
        row = entry(actor, action, target, detail, address)
        with self._lock:
            if len(self._queue) >= self._max:
                self._counters.inc("audit.refusals_dropped")
                return
            self._queue.append(row)
        self._counters.inc("audit.refusals")

    def flush(self) -> int:
        """Write what is queued; blocking (a worker thread). Returns the rows written."""
        with self._lock:
            rows = list(self._queue)
            self._queue.clear()
        if rows:
            with self._factory.begin() as session:
                session.add_all(rows)
        return len(rows)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            try:
                await asyncio.to_thread(self.flush)
            except Exception:
                # The database is away: those rows are lost (counted), the next ones may land.
                self._counters.inc("audit.write_failures")
                log.exception(kv("audit_flush_failed"))
