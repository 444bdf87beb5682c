"""Commissioning a gateway: start a run (the drill page to the installer), keep drills settled
(a background loop in the server; every report settles too, so a CLI run needs no loop), and
compose the report from the registry, the delivery log and the points' first readings."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import new_event_id, utc_now

from ..audit import SYSTEM, record
from ..config import CommissioningConfig, LifecycleConfig
from ..counters import Counters
from ..db.commissioning_models import CommissioningRun
from ..db.enrollment_models import EnrolledGateway
from ..db.models import Staff
from ..logs import kv
from ..notify.links import LinkSigner
from ..registry.viewers import load_viewer
from ..timeseries.reader import FirstReading, QueryFailed, SeriesReader
from .drill import PENDING, drill_point, open_drill, runs_to_settle, settle_run
from .report import compose

log = logging.getLogger(__name__)
# Readings of a gateway created by hand (not enrolled) are looked for this far back.
UNENROLLED_LOOKBACK = timedelta(days=400)
# An enrolled gateway's readings from this long before it was created still count (its clock
# may run behind the server's).
CLOCK_SKEW = timedelta(hours=1)


class CommissionError(Exception):
    """A run that cannot start or be found; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Commissioning:
    def __init__(self, factory: sessionmaker[Session], config: CommissioningConfig,
                 lifecycle: LifecycleConfig, links: LinkSigner, reader: SeriesReader | None,
                 counters: Counters, *, clock: Callable[[], datetime] = utc_now,
                 on_pages: Callable[[], None] = lambda: None) -> None:
        self.factory = factory
        self.config = config
        self.lifecycle = lifecycle
        self.links = links
        self.reader = reader
        self.counters = counters
        self.clock = clock
        self.on_pages = on_pages  # wake the notification sender
        self.timeout = timedelta(seconds=config.drill_timeout_s)

    def start(self, gateway: str, started_by: str, installer: str, address: str) -> str:
        """A new run and its drill page to ``installer``; the run's id. Blocking."""
        now = self.clock()
        with self.factory.begin() as session:
            person = session.get(Staff, installer)
            if person is None:
                raise CommissionError(404, f"没有该人员 / no staff member {installer!r}")
            underway = session.scalar(select(CommissioningRun.id).where(
                CommissioningRun.gateway == gateway, CommissioningRun.drill_outcome == PENDING))
            if underway is not None:
                raise CommissionError(409, f"网关 {gateway} 的调试演练正在进行 / a drill for "
                                           f"{gateway} is under way: run {underway}")
            viewer = load_viewer(session, installer)
            # A point the installer sees: opening the page's link then acknowledges it.
            point = drill_point(session, gateway, viewer.grids if viewer else frozenset())
            incident = open_drill(session, gateway, point, person, self.config.channels,
                                  self.links, now)
            run = CommissioningRun(id=new_event_id(), gateway=gateway, started_by=started_by,
                                   installer=installer, started_at=now,
                                   drill_incident_id=incident.id, drill_outcome=PENDING,
                                   verdict=PENDING)
            session.add(run)
            record(session, started_by, "commissioning.start", gateway,
                   {"run": run.id, "installer": installer, "drill": incident.id}, address)
            run_id = run.id
        self.counters.inc("commissioning.started")
        log.info(kv("commissioning_started", run=run_id, gateway=gateway, installer=installer,
                    drill=incident.id))
        self.on_pages()
        return run_id

    def settle_due(self) -> int:
        """Settle every drill under way; how many closed now. Blocking."""
        now = self.clock()
        with self.factory.begin() as session:
            closed = sum(self._settle(session, run, now)
                         for run in runs_to_settle(session, now))
        return closed

    def _settle(self, session: Session, run: CommissioningRun, now: datetime) -> bool:
        settled = settle_run(session, run, self.lifecycle, self.timeout, now)
        if settled is None:
            return False
        record(session, SYSTEM, "commissioning.drill", run.gateway,
               {"run": run.id, "outcome": settled.outcome, "drill": settled.incident.id})
        self.counters.inc("commissioning.drills_closed")
        log.info(kv("commissioning_drill_closed", run=run.id, gateway=run.gateway,
                    outcome=settled.outcome))
        return True

    async def run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.settle_due)
            except Exception:
                self.counters.inc("commissioning.errors")
                log.exception(kv("commissioning_settle_failed"))
            await asyncio.sleep(self.lifecycle.tick_s)

    async def report(self, run_id: str) -> dict[str, Any]:
        """The run's report, its drill settled and the readings looked up now."""
        gateway, since = await asyncio.to_thread(self._prepare, run_id)
        first: list[FirstReading] = []
        error = None
        if self.reader is None:
            error = "no time-series reader"
        else:
            try:
                first = await self.reader.first_readings(gateway, since)
            except QueryFailed as failed:
                error = str(failed)
        return await asyncio.to_thread(self._compose, run_id, first, error)

    def latest(self, gateway: str, limit: int = 20) -> list[CommissioningRun]:
        with self.factory() as session:
            return list(session.scalars(
                select(CommissioningRun).where(CommissioningRun.gateway == gateway)
                .order_by(CommissioningRun.started_at.desc()).limit(limit)))

    def gateway_of(self, run_id: str) -> str:
        with self.factory() as session:
            run = session.get(CommissioningRun, run_id)
            if run is None:
                raise CommissionError(404, f"没有该调试记录 / no commissioning run {run_id!r}")
            return run.gateway

    def _prepare(self, run_id: str) -> tuple[str, datetime]:
        now = self.clock()
        with self.factory.begin() as session:
            run = session.get(CommissioningRun, run_id, with_for_update=True)
            if run is None:
                raise CommissionError(404, f"没有该调试记录 / no commissioning run {run_id!r}")
            self._settle(session, run, now)
            enrolled = session.get(EnrolledGateway, run.gateway)
            since = (enrolled.created_at - CLOCK_SKEW if enrolled is not None
                     else now - UNENROLLED_LOOKBACK)
            return run.gateway, since

    def _compose(self, run_id: str, first: list[FirstReading],
                 error: str | None) -> dict[str, Any]:
        with self.factory.begin() as session:
            run = session.get(CommissioningRun, run_id, with_for_update=True)
            assert run is not None  # runs are never deleted
            before = run.verdict
            report = compose(session, run, first, error, self.clock())
            if report["verdict"] != before:
                record(session, SYSTEM, "commissioning.verdict", run.gateway,
                       {"run": run.id, "verdict": report["verdict"],
                        "reasons": [r["code"] for r in report["reasons"]]})
        return report
