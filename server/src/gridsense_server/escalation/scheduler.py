"""Execute due escalation steps: durable rows, claimed idempotently, a few per transaction.

The clock is injectable so tests can run an escalation in fake time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import utc_now

from ..config import LifecycleConfig, PolicySpec
from ..counters import Counters
from ..db.models import EscalationStep, Incident, Point
from ..live.hub import LiveHub
from ..logs import kv
from ..notify.links import LinkSigner
from ..notify.messages import headline
from ..notify.pages import Page, describe, enqueue, pages_for
from ..workorders.escalation_steps import StepName, add_step, page_due
from ..workorders.states import WAITING
from ..workorders.transitions import SYSTEM, record, transition
from ..workorders.views import IncidentView
from .recipients import recipients

log = logging.getLogger(__name__)
# Steps per transaction: fewer commits, yet short enough that ingest never waits long for the
# SQLite write lock (or, on PostgreSQL, for the incident rows the steps lock).
STEPS_PER_TRANSACTION = 8
Clock = Callable[[], datetime]
WHY_ZH = {"new": "新告警", "overdue": "超时未受理", "reminder": "处理提醒"}


@dataclass(frozen=True, slots=True)
class StepOutcome:
    incident: dict[str, Any]
    grid_id: str | None
    pages: int
    kind: str = ""  # the step's kind (page, remind, unaccept); empty for an auto-resolve


class EscalationScheduler:
    def __init__(self, factory: sessionmaker[Session], config: LifecycleConfig, links: LinkSigner,
                 counters: Counters, *, hub: LiveHub | None = None,
                 clock: Clock = utc_now, batch: int = 500,
                 on_pages: Callable[[], None] | None = None) -> None:
        self.factory = factory
        self.config = config
        self.links = links
        self.counters = counters
        self.hub = hub
        self.clock = clock
        self.batch = batch
        self.on_pages = on_pages
        self.zone = ZoneInfo(config.timezone)

    def run_due(self, budget_s: float | None = None) -> list[StepOutcome]:
        """Execute the steps due now (blocking), all of them or as many as fit ``budget_s``
        of wall time; the rest stay due for the next pass."""
        started = time.monotonic()
        outcomes = self.auto_resolve(self.clock())
        while True:
            now = self.clock()
            with self.factory() as session:
                due = list(session.scalars(
                    select(EscalationStep.id)
                    .where(EscalationStep.status == "pending", EscalationStep.due_at <= now)
                    .order_by(EscalationStep.due_at).limit(self.batch)
                ))
            recipients_now: dict[tuple[str | None, str], list[str]] = {}
            for n in range(0, len(due), STEPS_PER_TRANSACTION):
                outcomes += self._execute_group(due[n:n + STEPS_PER_TRANSACTION], now,
                                                recipients_now)
                if budget_s is not None and time.monotonic() - started > budget_s:
                    self.counters.inc("escalation.passes_cut")
                    return outcomes
            if len(due) < self.batch:
                return outcomes

    def auto_resolve(self, now: datetime) -> list[StepOutcome]:
        """Close self-clearing incidents whose alarm has been cleared for the quiet period
        (never a critical one: that waits for a person)."""
        spec = self.config.auto_resolve
        if not spec.types:
            return []
        outcomes = []
        with self.factory.begin() as session:
            for incident in session.scalars(
                select(Incident).where(
                    Incident.type.in_(spec.types), Incident.alarm == "cleared",
                    Incident.severity != "critical",
                    Incident.state.in_(("new", "returned", "accepted")),
                    Incident.last_seen_at < now - timedelta(seconds=spec.quiet_s))
                .limit(self.batch).with_for_update()
            ):
                transition(session, incident, "auto_resolve", "closed", self.config, now,
                           actor=SYSTEM, role=None,
                           note=f"alarm cleared for {spec.quiet_s:g} s: closed by the system")
                self.counters.inc("escalation.auto_resolved")
                outcomes.append(StepOutcome(IncidentView.of(incident).to_json(),
                                            incident.grid_id, 0))
        return outcomes

    async def run(self) -> None:
        while True:
            try:
                started = time.monotonic()
                outcomes = await asyncio.to_thread(self.run_due, self.config.pass_budget_s)
                self.counters.observe("escalation.pass", time.monotonic() - started)
                self.publish(outcomes)
            except Exception:
                self.counters.inc("escalation.errors")
                log.exception(kv("escalation_tick_failed"))
            await asyncio.sleep(self.config.tick_s)

    def publish(self, outcomes: list[StepOutcome]) -> None:
        for outcome in outcomes:
            if self.hub is not None:
                self.hub.publish(outcome.grid_id, {"type": "incident", "event": "escalated",
                                                   "incident": outcome.incident})
        if any(o.pages for o in outcomes) and self.on_pages is not None:
            self.on_pages()

    def _execute_group(self, step_ids: list[int], now: datetime,
                       recipients_now: dict[tuple[str | None, str], list[str]]
                       ) -> list[StepOutcome]:
        """Several steps in one transaction (a commit per step was a third of the cost); if
        one of them fails, each runs alone so the others still go out."""
        try:
            with self.factory.begin() as session:
                mine = _lock_pending(session, step_ids)
                found = [self._execute(session, i, now, recipients_now) for i in mine]
            return self._counted([o for o in found if o is not None])
        except Exception:
            if len(step_ids) == 1:
                raise
        outcomes = []
        for step_id in step_ids:
            try:
                with self.factory.begin() as session:
                    outcome = self._execute(session, step_id, now, {})
            except Exception:
                self.counters.inc("escalation.errors")
                log.exception(kv("escalation_step_failed", step=step_id))
                continue
            if outcome is not None:
                outcomes.append(outcome)
        return self._counted(outcomes)

    def _counted(self, outcomes: list[StepOutcome]) -> list[StepOutcome]:
        """Counted once committed (a group that failed is run again step by step)."""
        for outcome in outcomes:
            self.counters.inc(f"escalation.{outcome.kind}")
        return outcomes

    def _execute(self, session: Session, step_id: int, now: datetime,
                 recipients_now: dict[tuple[str | None, str], list[str]]) -> StepOutcome | None:
        claimed = session.execute(
            update(EscalationStep)
            .where(EscalationStep.id == step_id, EscalationStep.status == "pending")
            .values(status="done", done_at=now)
        ).rowcount
        if claimed != 1:
            self.counters.inc("escalation.already_claimed")
            return None
        step = session.get(EscalationStep, step_id)
        assert step is not None
        incident = session.get(Incident, step.incident_id, with_for_update=True)
        if incident is None or incident.policy is None:
            return None
        policy = self.config.policies.get(incident.policy)
        if policy is None:
            incident.policy, policy = self.config.policy_for(incident.type, incident.severity)
        name = StepName.parse(step.step)
        pages = self._perform(session, incident, policy, name, step.loop, step.step, now,
                              recipients_now)
        log.info(kv("escalation_step", incident=incident.id, step=step.step, loop=step.loop,
                    state=incident.state, pages=pages))
        return StepOutcome(IncidentView.of(incident).to_json(), incident.grid_id, pages,
                           name.kind)

    def _perform(self, session: Session, incident: Incident, policy: PolicySpec, name: StepName,
                 loop: int, key: str, now: datetime,
                 recipients_now: dict[tuple[str | None, str], list[str]]) -> int:
        if name.kind == "page" and incident.state in WAITING:
            spec = policy.steps[name.index]
            people = sorted({u for target in spec.notify for u in
                             self._recipients(session, incident.grid_id, target, now,
                                              recipients_now)})
            pages = self._page(session, incident, key, loop, people, spec.channels, now,
                               "overdue" if now >= (incident.accept_due_at or now) else "new")
            note = (f"step {name.index + 1}/{len(policy.steps)} loop {loop + 1}: "
                    f"{'+'.join(spec.notify)} → {', '.join(people) or 'nobody on record'} "
                    f"[{', '.join(spec.channels)}]")
            record(session, incident, "escalate", incident.state, actor=SYSTEM, role=None,
                   now=now, note=note)
            self._next_page(session, incident, policy, name, loop)
            return len(pages)
        if name.kind == "remind" and incident.state == "accepted" and incident.accepted_by:
            pages = self._page(session, incident, key, loop, [incident.accepted_by],
                               policy.quiet_channels, now, "reminder")
            record(session, incident, "remind", "accepted", actor=SYSTEM, role=None, now=now,
                   note=f"no activity from {incident.accepted_by} since accepting")
            if policy.unaccept_after_s is not None:
                add_step(session, incident.id, StepName("unaccept", 0, name.start), 0,
                         name.start + timedelta(seconds=policy.unaccept_after_s))
            return len(pages)
        if name.kind == "unaccept" and incident.state == "accepted":
            transition(session, incident, "unaccept", "new", self.config, now, actor=SYSTEM,
                       role=None, note=f"{incident.accepted_by} stayed quiet: escalated again")
        return 0

    def _recipients(self, session: Session, grid_id: str | None, target: str, now: datetime,
                    known: dict[tuple[str | None, str], list[str]]) -> list[str]:
        """Who ``target`` is for the grid, asked once per scheduler pass (the same ``now``):
        a burst of incidents in one grid pages the same people."""
        key = (grid_id, target)
        if key not in known:
            known[key] = recipients(session, grid_id, target, now, self.zone)
        return known[key]

    @staticmethod
    def _next_page(session: Session, incident: Incident, policy: PolicySpec, name: StepName,
                   loop: int) -> None:
        if name.index + 1 < len(policy.steps):
            nxt, nloop = StepName("page", name.index + 1, name.start), loop
        elif loop < policy.repeat:
            nxt, nloop = StepName("page", 0, name.start), loop + 1
        else:
            return
        add_step(session, incident.id, nxt, nloop, page_due(policy, nxt, nloop))

    def _page(self, session: Session, incident: Incident, key: str, loop: int,
              people: list[str], channels: list[str], now: datetime, why: str) -> list[Page]:
        pages = pages_for(session, incident, people, channels)
        point = session.get(Point, incident.point_id)
        place = point.name if point is not None else incident.point_id
        title = headline(incident.severity, WHY_ZH[why], place, incident.type)
        text = f"{incident.message or describe(incident)}（网格 {incident.grid_id or '未分配'}）"
        return enqueue(session, incident, key, loop, pages, title, text, self.links, now)


def _lock_pending(session: Session, step_ids: list[int]) -> list[int]:
    """The steps still pending that no other transaction holds, locked for this one: another
    server process running the same pass takes the rest (PostgreSQL's SKIP LOCKED; SQLite has
    one writer and ignores it). The claim in ``_execute`` stays the guarantee of once."""
    return list(session.scalars(
        select(EscalationStep.id)
        .where(EscalationStep.id.in_(step_ids), EscalationStep.status == "pending")
        .order_by(EscalationStep.id).with_for_update(skip_locked=True)))
