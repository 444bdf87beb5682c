"""What the vendors share: a per-minute message limit per robot, and answers to force."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class MinuteLimit:
    """At most ``per_min`` messages in any 60 s; over it, refused for ``penalty_s`` (DingTalk
    shuts a robot up for ten minutes)."""

    per_min: int = 20
    penalty_s: float = 600.0
    _times: deque[float] = field(default_factory=lambda: deque(maxlen=1000))
    _blocked_until: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self) -> bool:
        now = time.monotonic()
        with self._lock:
            if now < self._blocked_until:
                return False
            while self._times and now - self._times[0] >= 60:
                self._times.popleft()
            if len(self._times) >= self.per_min:
                self._blocked_until = now + self.penalty_s
                return False
            self._times.append(now)
            return True

    def lift(self) -> None:
        """The penalty is over (tests do not wait ten minutes)."""
        with self._lock:
            self._blocked_until = 0.0
            self._times.clear()


@dataclass
class Inbox:
    """What a stand-in accepted, and answers queued to be given instead of the next ones."""

    received: list[dict[str, Any]] = field(default_factory=list)
    forced: deque[dict[str, Any]] = field(default_factory=deque)
    refused: list[dict[str, Any]] = field(default_factory=list)

    def force(self, *answers: dict[str, Any]) -> None:
        self.forced.extend(answers)
