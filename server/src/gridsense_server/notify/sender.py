"""Send what is due in the delivery log: throttled per target (the overflow as one digest),
each vendor's answer read by name (sent, rate limited, passing failure, bad configuration),
retried with backoff, and a page that cannot be delivered handed back to escalation.

A claim is a lease (``sending`` for ``LEASE``): rows left by a process that died while
sending are retried once the lease has run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import utc_now

from ..config import LifecycleConfig
from ..counters import Counters
from ..db.models import Notification
from ..live.hub import LiveHub
from ..live.presence import Presence
from ..logs import kv
from ..workorders.escalation_steps import bring_forward
from .channels import ChannelSet, Outcome
from .messages import Message, digest
from .page_facts import messages_for

log = logging.getLogger(__name__)
WINDOW = timedelta(minutes=1)
# A ``sending`` row whose lease ran out was left by a process that died while sending it.
CLAIMABLE = ("pending", "retry", "sending")
RETRY_CAP_S = 300.0
LEASE = timedelta(minutes=5)  # longer than any send (apprise's own timeouts are shorter)
WAIT_S = 5.0  # over the per-minute budget: look again when the window has moved


@dataclass(frozen=True, slots=True)
class _Result:
    kind: str  # sent | digested | offline | wait | backoff | error
    outcome: Outcome | None = None
    until: datetime | None = None  # backoff: not before


class NotificationSender:
    def __init__(self, factory: sessionmaker[Session], config: LifecycleConfig, hub: LiveHub,
                 counters: Counters, *, clock: Callable[[], datetime] = utc_now,
                 channels: ChannelSet | None = None, batch: int = 200) -> None:
        self.factory = factory
        self.config = config
        self.hub = hub
        self.counters = counters
        self.clock = clock
        self.channels = channels or ChannelSet(config.vendors)
        self.batch = batch
        self.zone = ZoneInfo(config.timezone)
        # Targets that answered "rate limited", until when. Pruned every pass, so it holds
        # at most the targets limited within the longest wait.
        self._blocked: dict[str, datetime] = {}
        self._wake = asyncio.Event()
        # Set with several server processes: who has a stream open on another one.
        self.presence: Presence | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.tick_s)
            self._wake.clear()
            try:
                # A backlog is worked off in slices, like the escalation scheduler's, so a
                # burst of pages never starves ingest of the CPU.
                started = time.monotonic()
                while (await self.process_due() >= self.batch
                       and time.monotonic() - started < self.config.pass_budget_s):
                    pass
            except Exception:
                self.counters.inc("notify.errors")
                log.exception(kv("delivery_pass_failed"))

    async def process_due(self) -> int:
        """One pass over what is due; returns how many rows it handled."""
        now = self.clock()
        rows, sent_recently = await asyncio.to_thread(self._claim, now)
        outcomes: dict[int, _Result] = {}
        by_target: dict[str, list[Notification]] = defaultdict(list)
        for row in rows:
            if row.target is None:
                delivered = self.hub.publish_user(row.recipient, {
                    "type": "page", "incident_id": row.incident_id, "title": row.title,
                    "body": row.body})
                if not delivered and self.presence is not None:
                    # Connected to another server process: the relay took the page there.
                    delivered = await asyncio.to_thread(self.presence.elsewhere, row.recipient)
                outcomes[row.id] = _Result("sent" if delivered else "offline")
            else:
                by_target[row.target].append(row)
        self._blocked = {t: u for t, u in self._blocked.items() if u > now}
        messages = await asyncio.to_thread(self._messages, rows) if by_target else {}
        for target, group in by_target.items():
            until = self._blocked.get(target)
            if until is not None:
                outcomes.update({row.id: _Result("backoff", None, until) for row in group})
                continue
            spec = self.config.channel(group[0].channel)
            # A burst to one target is grouped even within the rate limit: the phone buzzes
            # once for "six doors at gw-03", not six times.
            capacity = min(spec.rate_per_min - sent_recently.get(target, 0), spec.group_over)
            outcomes.update(await self._send_group(target, group, capacity, messages, now))
        if rows:
            await asyncio.to_thread(self._record, rows, outcomes, now)
        return len(rows)

    def _messages(self, rows: list[Notification]) -> dict[int, Message]:
        with self.factory() as session:
            found = messages_for(session, [r for r in rows if r.target is not None], self.zone)
        # A row whose incident is gone still says what it said when it was logged.
        return {row.id: found.get(row.id) or Message(row.title, "info", (("内容", row.body),))
                for row in rows}

    async def _send_group(self, target: str, group: list[Notification], capacity: int,
                          messages: dict[int, Message], now: datetime) -> dict[int, _Result]:
        if capacity <= 0:
            return {row.id: _Result("wait") for row in group}
        single = group if len(group) <= capacity else group[: capacity - 1]
        rest = group[len(single):]
        results: dict[int, _Result] = {}
        for n, row in enumerate(single):
            outcome = await asyncio.to_thread(self.channels.send, target, messages[row.id])
            if outcome.status == "rate_limited":
                return results | self._back_off(target, group[n:], outcome, now)
            results[row.id] = _Result("sent" if outcome.sent else "error", outcome)
        if rest:
            outcome = await asyncio.to_thread(self.channels.send, target,
                                              digest([messages[r.id] for r in rest]))
            self.counters.inc("notify.digests")
            if outcome.status == "rate_limited":
                return results | self._back_off(target, rest, outcome, now)
            for n, row in enumerate(rest):
                kind = ("sent" if n == 0 else "digested") if outcome.sent else "error"
                results[row.id] = _Result(kind, outcome)
        return results

    def _back_off(self, target: str, rows: list[Notification], outcome: Outcome,
                  now: datetime) -> dict[int, _Result]:
        """The vendor says "too many": nothing more to this target until the wait is over,
        when what piled up goes as singles plus one digest."""
        wait = outcome.retry_after_s or 60.0
        until = now + timedelta(seconds=wait * random.uniform(1.0, 1.2))
        self._blocked[target] = until
        self.counters.inc("notify.rate_limited")
        log.warning(kv("delivery_rate_limited", vendor=outcome.vendor, code=outcome.code,
                       detail=outcome.detail, rows=len(rows), wait_s=round(wait)))
        return {row.id: _Result("backoff", outcome, until) for row in rows}

    def _claim(self, now: datetime) -> tuple[list[Notification], dict[str, int]]:
        with self.factory.begin() as session:
            candidates = list(session.scalars(
                select(Notification).where(Notification.status.in_(CLAIMABLE),
                                           Notification.next_attempt_at <= now)
                .order_by(Notification.next_attempt_at, Notification.id).limit(self.batch)
            ))
            rows = []
            for row in candidates:
                claimed = session.execute(
                    update(Notification).where(Notification.id == row.id,
                                               Notification.status == row.status,
                                               Notification.next_attempt_at == row.next_attempt_at)
                    .values(status="sending", next_attempt_at=now + LEASE)
                ).rowcount
                if claimed == 1:
                    rows.append(row)
            targets = {r.target for r in rows if r.target is not None}
            sent_recently: dict[str, int] = {}
            if targets:
                sent_recently = dict(session.execute(
                    select(Notification.target, func.count())
                    .where(Notification.target.in_(targets), Notification.status == "sent",
                           Notification.sent_at > now - WINDOW)
                    .group_by(Notification.target)
                ).all())  # type: ignore[arg-type]
            session.expunge_all()
            return rows, sent_recently

    def _record(self, rows: list[Notification], outcomes: dict[int, _Result],
                now: datetime) -> None:
        with self.factory.begin() as session:
            for row in rows:
                result = outcomes.get(row.id, _Result("wait"))
                values = self._values(row, result, now)
                session.execute(update(Notification).where(Notification.id == row.id)
                                .values(**values))
                self.counters.inc(f"notify.{values['status']}")
                # By channel as well, for /metrics (pages sent and failed per channel).
                self.counters.inc(f"notify.channel.{row.channel}.{values['status']}")
                if result.kind != "error":
                    continue
                assert result.outcome is not None
                log.warning(kv("delivery_failed", delivery=row.id, incident=row.incident_id,
                               channel=row.channel, recipient=row.recipient,
                               attempts=values["attempts"], status=values["status"],
                               vendor=result.outcome.vendor, code=result.outcome.code,
                               error=result.outcome.detail))
                # Nobody reached on this channel: the next step need not wait its turn.
                if (values["status"] == "failed" and row.step.startswith("page.")
                        and bring_forward(session, row.incident_id, row.loop, now)):
                    self.counters.inc("notify.escalated_on_failure")

    def _values(self, row: Notification, result: _Result, now: datetime) -> dict[str, object]:
        if result.kind in ("sent", "digested", "offline"):
            return {"status": result.kind, "sent_at": now, "attempts": row.attempts + 1,
                    "error": None}
        if result.kind == "wait":  # over the budget: try again when the window moves
            return {"status": "retry", "next_attempt_at": now + timedelta(seconds=WAIT_S)}
        if result.kind == "backoff":  # not the row's fault: attempts are not spent
            values: dict[str, object] = {"status": "retry", "next_attempt_at": result.until,
                                         "attempts": row.attempts}
            if result.outcome is not None:
                values["error"] = result.outcome.describe()
            return values
        assert result.outcome is not None
        error = result.outcome.describe()
        attempts = row.attempts + 1
        limit = self.config.channel(row.channel).max_attempts
        give_up = result.outcome.status == "bad_config" or attempts >= limit
        delay = min(RETRY_CAP_S, 2.0 * 2 ** (attempts - 1)) * random.uniform(0.5, 1)
        return {"status": "failed" if give_up else "retry", "attempts": attempts,
                "error": error, "next_attempt_at": now + timedelta(seconds=delay)}
