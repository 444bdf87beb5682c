"""Scheduling escalation steps as durable rows, in the caller's transaction.

A step's name says what it is and when its phase began: ``page.<index>@<ms>``,
``remind@<ms>`` or ``unaccept@<ms>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from ..config import LifecycleConfig, PolicySpec
from ..db.models import EscalationStep, Incident
from .states import WAITING


@dataclass(frozen=True, slots=True)
class StepName:
    kind: str  # page | remind | unaccept
    index: int
    start: datetime  # when the phase began (server time, millisecond precision)

    def __str__(self) -> str:
        ms = int(self.start.timestamp() * 1000)
        return f"page.{self.index}@{ms}" if self.kind == "page" else f"{self.kind}@{ms}"

    @classmethod
    def parse(cls, text: str) -> StepName:
        head, _, ms = text.partition("@")
        start = datetime.fromtimestamp(int(ms) / 1000, UTC)
        kind, _, index = head.partition(".")
        return cls(kind, int(index or 0), start)


def _ms(moment: datetime) -> datetime:
    """Round to milliseconds, the precision a step name keeps."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def add_step(session: Session, incident_id: str, name: StepName, loop: int,
             due: datetime) -> None:
    session.add(EscalationStep(incident_id=incident_id, step=str(name), loop=loop, due_at=due,
                               status="pending"))


def page_due(policy: PolicySpec, name: StepName, loop: int) -> datetime:
    offset = loop * policy.repeat_every_s + policy.steps[name.index].after_s
    return name.start + timedelta(seconds=offset)


def cancel_pending(session: Session, incident_id: str) -> None:
    session.execute(
        update(EscalationStep)
        .where(EscalationStep.incident_id == incident_id, EscalationStep.status == "pending")
        .values(status="cancelled")
    )


def bring_forward(session: Session, incident_id: str, loop: int, now: datetime) -> int:
    """Make the incident's next pending page step of the same loop due now (a page could not
    be delivered: waiting out the step's delay would only leave the incident unseen longer).
    The next loop keeps its time: it would page the same unreachable people again."""
    return session.execute(
        update(EscalationStep)
        .where(EscalationStep.incident_id == incident_id, EscalationStep.status == "pending",
               EscalationStep.step.like("page.%"), EscalationStep.loop == loop,
               EscalationStep.due_at > now)
        .values(due_at=now)
    ).rowcount


def schedule_for_state(session: Session, incident: Incident, config: LifecycleConfig,
                       now: datetime, *, cancel: bool = True) -> None:
    """End the previous phase's steps and start the ones the incident's state calls for."""
    if cancel:
        cancel_pending(session, incident.id)
    if incident.suppressed or incident.backfilled or incident.policy is None:
        return
    policy = config.policies.get(incident.policy)
    if policy is None:  # the policy was removed from the config: keep the default one
        incident.policy, policy = config.policy_for(incident.type, incident.severity)
    start = _ms(now)
    if incident.state in WAITING:
        name = StepName("page", 0, start)
        add_step(session, incident.id, name, 0, page_due(policy, name, 0))
    elif incident.state == "accepted" and policy.remind_after_s is not None:
        add_step(session, incident.id, StepName("remind", 0, start), 0,
                 start + timedelta(seconds=policy.remind_after_s))
    elif incident.state == "accepted" and policy.unaccept_after_s is not None:
        add_step(session, incident.id, StepName("unaccept", 0, start), 0,
                 start + timedelta(seconds=policy.unaccept_after_s))
