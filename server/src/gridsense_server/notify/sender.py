"""Send what is due in the delivery log: retries with backoff, per-target rate limits, digests.

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
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import utc_now

from ..config import LifecycleConfig
from ..counters import Counters
from ..db.models import Notification
from ..live.hub import LiveHub
from ..logs import kv
from . import apprise_channel

log = logging.getLogger(__name__)
Sender = Callable[[str, str, str], str | None]  # (url, title, body) -> error or None
WINDOW = timedelta(minutes=1)
# A ``sending`` row whose lease ran out was left by a process that died while sending it.
CLAIMABLE = ("pending", "retry", "sending")
RETRY_CAP_S = 300.0
LEASE = timedelta(minutes=5)  # longer than any send (apprise's own timeouts are shorter)


class NotificationSender:
    def __init__(self, factory: sessionmaker[Session], config: LifecycleConfig, hub: LiveHub,
                 counters: Counters, *, clock: Callable[[], datetime] = utc_now,
                 send: Sender = apprise_channel.send, batch: int = 200) -> None:
        self.factory = factory
        self.config = config
        self.hub = hub
        self.counters = counters
        self.clock = clock
        self.send = send
        self.batch = batch
        self._wake = asyncio.Event()

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
        outcomes: dict[int, tuple[str, str | None]] = {}
        by_target: dict[str, list[Notification]] = defaultdict(list)
        for row in rows:
            if row.target is None:
                delivered = self.hub.publish_user(row.recipient, {
                    "type": "page", "incident_id": row.incident_id, "title": row.title,
                    "body": row.body})
                outcomes[row.id] = ("sent", None) if delivered else ("offline", None)
            else:
                by_target[row.target].append(row)
        for target, group in by_target.items():
            spec = self.config.channel(group[0].channel)
            # A burst to one target is grouped even within the rate limit: the phone buzzes
            # once for "six doors at gw-03", not six times.
            capacity = min(spec.rate_per_min - sent_recently.get(target, 0), spec.group_over)
            outcomes.update(await self._send_group(target, group, capacity))
        if rows:
            await asyncio.to_thread(self._record, rows, outcomes, now)
        return len(rows)

    async def _send_group(self, target: str, group: list[Notification],
                          capacity: int) -> dict[int, tuple[str, str | None]]:
        if capacity <= 0:
            return {row.id: ("wait", None) for row in group}
        single = group if len(group) <= capacity else group[: capacity - 1]
        outcomes: dict[int, tuple[str, str | None]] = {}
        for row in single:
            error = await asyncio.to_thread(self.send, target, row.title, row.body)
            outcomes[row.id] = ("sent", None) if error is None else ("error", error)
        rest = group[len(single):]
        if rest:
            title = f"[gridsense] {len(rest)} more notifications (digest)"
            body = "\n\n".join(f"{r.title}\n{r.body}" for r in rest)
            error = await asyncio.to_thread(self.send, target, title, body)
            self.counters.inc("notify.digests")
            for i, row in enumerate(rest):
                outcomes[row.id] = (("sent" if i == 0 else "digested"), None) \
                    if error is None else ("error", error)
        return outcomes

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

    def _record(self, rows: list[Notification], outcomes: dict[int, tuple[str, str | None]],
                now: datetime) -> None:
        with self.factory.begin() as session:
            for row in rows:
                outcome, error = outcomes.get(row.id, ("wait", None))
                values: dict[str, object] = {}
                if outcome in ("sent", "digested", "offline"):
                    values = {"status": outcome, "sent_at": now,
                              "attempts": row.attempts + 1, "error": None}
                elif outcome == "wait":  # rate limited: try again when the window moves
                    values = {"status": "retry", "next_attempt_at": now + timedelta(seconds=5)}
                else:
                    attempts = row.attempts + 1
                    limit = self.config.channel(row.channel).max_attempts
                    delay = min(RETRY_CAP_S, 2.0 * 2 ** (attempts - 1)) * random.uniform(0.5, 1)
                    values = {"status": "failed" if attempts >= limit else "retry",
                              "attempts": attempts, "error": (error or "")[:500],
                              "next_attempt_at": now + timedelta(seconds=delay)}
                session.execute(update(Notification).where(Notification.id == row.id)
                                .values(**values))
                self.counters.inc(f"notify.{values['status']}")
                if values["status"] in ("retry", "failed") and outcome != "wait":
                    log.warning(kv("delivery_failed", delivery=row.id, incident=row.incident_id,
                                   channel=row.channel, recipient=row.recipient,
                                   attempts=values["attempts"], status=values["status"],
                                   error=error))
