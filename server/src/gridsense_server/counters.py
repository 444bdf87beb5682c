"""Process-wide counters, exposed by /healthz. Names are dotted: ``ingest.invalid.oversized``."""

from __future__ import annotations

import threading
from collections import defaultdict


class Counters:
    """Monotonic counters shared by the paho thread and the asyncio loop.

    Increments take a lock: ``+=`` on a dict entry is not atomic across threads, and a
    counter that silently loses increments would make the health page lie.
    """

    def __init__(self) -> None:
        self._values: defaultdict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def inc(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._values[name] += amount

    def get(self, name: str) -> int:
        with self._lock:
            return self._values.get(name, 0)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._values.items()))
