"""Capped exponential backoff with equal jitter, for every reconnect and retry loop.

Jitter keeps a fleet of clients from reconnecting in lock-step after a broker or database
restart (the thundering herd); equal jitter (half the delay fixed, half random) rather than
full jitter so that a retry never comes almost at once after a failure.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial_s: float = 0.5
    cap_s: float = 30.0
    factor: float = 2.0
    attempts: int = field(default=0, init=False)

    def next_delay(self) -> float:
        """Delay before the next attempt: uniform in [base/2, base], base doubling up to the cap."""
        base = min(self.cap_s, self.initial_s * self.factor**self.attempts)
        self.attempts += 1
        return random.uniform(base / 2, base)

    def reset(self) -> None:
        self.attempts = 0
