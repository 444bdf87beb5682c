"""Retry a database transaction while the database is unreachable or busy.

Acknowledgements wait meanwhile, so a database outage stops ingest (the broker keeps the
messages) instead of losing what arrived. Errors a retry cannot fix are raised at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError

from ..backoff import Backoff
from ..counters import Counters
from ..logs import kv

log = logging.getLogger(__name__)
T = TypeVar("T")


def is_transient(exc: DBAPIError) -> bool:
    """Worth retrying: "database is locked" (SQLite), connection failures (PostgreSQL restart)."""
    if isinstance(exc, IntegrityError):
        return False
    if exc.connection_invalidated:
        return True
    text = str(exc.orig).lower()
    return any(s in text for s in ("locked", "connection", "server closed", "terminating"))


async def retry_transient(call: Callable[[], T], counters: Counters, what: str) -> T:
    """Run the blocking ``call`` in a worker thread until it gets through."""
    backoff = Backoff(initial_s=0.2, cap_s=10.0)
    while True:
        try:
            return await asyncio.to_thread(call)
        except DBAPIError as exc:
            if not is_transient(exc):
                raise
            counters.inc(f"{what}.db_retries")
            log.warning(kv("db_retry", what=what, error=str(exc.orig)[:200]))
            await asyncio.sleep(backoff.next_delay())
