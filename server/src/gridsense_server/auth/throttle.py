"""A failure throttle shared by every server process (its state is in the database).

Subjects are what is being guessed at or from: ``user:alice``, ``addr:10.0.0.7``. Each scope
(``login`` here; enrollment codes and pass look-ups later) keeps its own counts. After
``free_failures`` a subject must wait ``base_delay_s``, doubling per failure up to
``max_delay_s``; at ``lockout_after`` it is locked for ``lockout_s``. The server never sleeps
on a request: a blocked attempt is answered at once (HTTP 429, Retry-After), so a flood of
guesses costs it a row read each, not a parked worker. Failures are forgotten ``window_s``
after the last one, or at once by ``unlock`` (an admin) or a success (the account only).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import utc_now

from ..config import ThrottleConfig
from ..db.web_models import THROTTLE_KEY_LEN, ThrottleEntry


@dataclass(frozen=True, slots=True)
class Blocked:
    subject: str
    retry_after_s: int  # whole seconds, at least 1 (the Retry-After header)
    locked: bool  # a lockout rather than a growing delay
    failures: int


class Throttle:
    def __init__(self, factory: sessionmaker[Session], config: ThrottleConfig, scope: str,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._factory = factory
        self.config = config
        self.scope = scope
        self._clock = clock  # the tests' hand-moved clock; the server's is the real one

    def _key(self, subject: str) -> str:
        return f"{self.scope}:{subject}"[:THROTTLE_KEY_LEN]

    def delay_for(self, failures: int) -> tuple[float, bool]:
        """(seconds to wait, locked) after ``failures`` failures in a row."""
        config = self.config
        if failures >= config.lockout_after:
            return config.lockout_s, True
        if failures <= config.free_failures:
            return 0.0, False
        return min(config.max_delay_s,
                   config.base_delay_s * 2 ** (failures - config.free_failures - 1)), False

    def blocked(self, subjects: list[str]) -> Blocked | None:
        """The longest wait any subject is under now, or None: go ahead. Blocking."""
        now = self._clock()
        with self._factory() as session:
            rows = session.scalars(select(ThrottleEntry).where(
                ThrottleEntry.key.in_([self._key(s) for s in subjects])))
            return _longest([self._blocked(row, now) for row in rows])

    def _blocked(self, row: ThrottleEntry, now: datetime) -> Blocked | None:
        if row.blocked_until is None or row.blocked_until <= now:
            return None
        return Blocked(row.key.removeprefix(f"{self.scope}:"),
                       max(1, math.ceil((row.blocked_until - now).total_seconds())),
                       row.failures >= self.config.lockout_after, row.failures)

    def failure(self, subjects: list[str]) -> Blocked | None:
        """Count a failure against each subject; the wait it now imposes (None: none)."""
        for attempt in range(2):
            try:
                return self._failure(subjects)
            except IntegrityError:  # another process inserted the same key first: count again
                if attempt:
                    raise
        return None

    def _failure(self, subjects: list[str]) -> Blocked | None:
        now = self._clock()
        window = timedelta(seconds=self.config.window_s)
        results: list[Blocked | None] = []
        with self._factory.begin() as session:
            for subject in subjects:
                row = session.get(ThrottleEntry, self._key(subject), with_for_update=True)
                if row is None:
                    row = ThrottleEntry(key=self._key(subject), failures=0, last_failure_at=now)
                    session.add(row)
                elif now - row.last_failure_at > window and not self._blocked(row, now):
                    row.failures = 0
                row.failures += 1
                row.last_failure_at = now
                wait, _ = self.delay_for(row.failures)
                row.blocked_until = now + timedelta(seconds=wait) if wait else None
                results.append(self._blocked(row, now))
        return _longest(results)

    def success(self, subjects: list[str]) -> None:
        with self._factory.begin() as session:
            session.execute(delete(ThrottleEntry).where(
                ThrottleEntry.key.in_([self._key(s) for s in subjects])))

    def unlock(self, subjects: list[str]) -> int:
        """Forget the failures of these subjects in every scope (an admin's unlock)."""
        with self._factory.begin() as session:
            result = session.execute(delete(ThrottleEntry).where(or_(*(
                ThrottleEntry.key.endswith(f":{subject}", autoescape=True)
                for subject in subjects))))
            return result.rowcount or 0

    def prune(self) -> int:
        """Drop rows past their window and not blocked; then the oldest beyond ``max_rows``."""
        now = self._clock()
        with self._factory.begin() as session:
            removed = session.execute(delete(ThrottleEntry).where(
                ThrottleEntry.last_failure_at < now - timedelta(seconds=self.config.window_s),
                or_(ThrottleEntry.blocked_until.is_(None), ThrottleEntry.blocked_until <= now),
            )).rowcount or 0
            excess = (session.scalar(select(func.count()).select_from(ThrottleEntry)) or 0) \
                - self.config.max_rows
            if excess > 0:
                oldest = select(ThrottleEntry.key).order_by(ThrottleEntry.last_failure_at) \
                    .limit(excess)
                removed += session.execute(delete(ThrottleEntry).where(
                    ThrottleEntry.key.in_(oldest))).rowcount or 0
        return removed


def _longest(found: list[Blocked | None]) -> Blocked | None:
    blocks = [b for b in found if b is not None]
    return max(blocks, key=lambda b: b.retry_after_s) if blocks else None
