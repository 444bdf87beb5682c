"""A clock the caller moves, for code that takes an injectable ``clock``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# 11:00 in Shanghai: the day shift (the night roster covers 20:00-08:00).
DAY = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = DAY

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
