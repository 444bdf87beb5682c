"""Process-wide counters, exposed by /healthz and /metrics. Names are dotted:
``ingest.invalid.oversized``. Durations (``observe``) are kept as fixed-bucket histograms."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from dataclasses import dataclass

# Upper bounds (seconds) of the duration buckets: from a loopback write (~1 ms) to a write that
# waits on a stalled InfluxDB (the request timeout); one set for every duration, so the
# dashboards can compare them.
DURATION_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                      10.0, 30.0)


@dataclass(frozen=True, slots=True)
class Durations:
    """One histogram: per-bucket counts (not cumulative; the last is above every bound)."""

    buckets: tuple[int, ...]
    total_s: float
    count: int


class Counters:
    """Monotonic counters shared by the paho thread and the asyncio loop.

    Increments take a lock: ``+=`` on a dict entry is not atomic across threads, and a
    counter that silently loses increments would make the health page lie.
    """

    def __init__(self) -> None:
        self._values: defaultdict[str, int] = defaultdict(int)
        self._durations: dict[str, tuple[list[int], list[float]]] = {}
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

    def observe(self, name: str, seconds: float) -> None:
        """Count one duration into the histogram ``name`` (a fixed number of names: bounded)."""
        index = bisect.bisect_left(DURATION_BUCKETS_S, seconds)
        with self._lock:
            found = self._durations.get(name)
            if found is None:
                found = self._durations[name] = ([0] * (len(DURATION_BUCKETS_S) + 1), [0.0])
            found[0][index] += 1
            found[1][0] += seconds

    def durations(self) -> dict[str, Durations]:
        with self._lock:
            return {name: Durations(tuple(buckets), total[0], sum(buckets))
                    for name, (buckets, total) in sorted(self._durations.items())}
