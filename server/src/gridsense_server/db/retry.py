"""Retry a database transaction while the database is unreachable or busy.

Acknowledgements wait meanwhile, so a database outage stops ingest (the broker keeps the
messages) instead of losing what arrived. Errors a retry cannot fix are raised at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from ..backoff import Backoff
from ..counters import Counters
from ..logs import kv

log = logging.getLogger(__name__)
T = TypeVar("T")


def is_transient(exc: DBAPIError) -> bool:
    """Worth retrying, by the DB-API's error class: OperationalError and InterfaceError are the
    database being away, busy or locked (a PostgreSQL restart, SQLite's "database is locked");
    DataError, IntegrityError, ProgrammingError are about the statement and never heal."""
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    # SQLite files a missing table or a syntax error as OperationalError too.
    text = str(exc.orig).lower()
    return not any(s in text for s in ("no such", "syntax error", "has no column"))


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
