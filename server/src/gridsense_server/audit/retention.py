"""Audit retention: rows older than ``retention_days`` pruned by a periodic task, a capped
batch per pass so one pass never holds a long write lock (SQLite) or bloats a transaction."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import utc_now

from ..config import AuditConfig
from ..counters import Counters
from ..db.web_models import AuditEntry
from ..logs import kv

log = logging.getLogger(__name__)


def prune(factory: sessionmaker[Session], retention_days: float, batch: int) -> int:
    """Delete up to ``batch`` of the oldest rows past retention; returns how many went."""
    cutoff = utc_now() - timedelta(days=retention_days)
    with factory.begin() as session:
        ids = select(AuditEntry.id).where(AuditEntry.at < cutoff).order_by(AuditEntry.id) \
            .limit(batch)
        return session.execute(delete(AuditEntry).where(AuditEntry.id.in_(ids))).rowcount or 0


async def run_retention(factory: sessionmaker[Session], config: AuditConfig,
                        counters: Counters) -> None:
    while True:
        pruned = 0
        try:
            pruned = await asyncio.to_thread(prune, factory, config.retention_days,
                                             config.prune_batch)
            if pruned:
                counters.inc("audit.pruned", pruned)
                log.info(kv("audit_pruned", rows=pruned, retention_days=config.retention_days))
        except Exception:
            log.exception(kv("audit_prune_failed"))
        # A full batch means more are due: go on soon (a backlog after retention was shortened).
        full = pruned >= config.prune_batch
        await asyncio.sleep(1.0 if full else config.prune_every_s)
