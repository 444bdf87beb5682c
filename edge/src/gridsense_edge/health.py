"""What the periodic Health message says about this agent: process, disk, drivers, counters."""

from __future__ import annotations

import gc
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from gridsense_protocol import DriverHealth, DriverState

from .logs import log_event

log = logging.getLogger(__name__)

CounterSource = Callable[[], dict[str, int]]


@runtime_checkable
class HealthSource(Protocol):
    """Anything that reports its own health under a name (every driver does; a rule may)."""

    name: str

    def health(self) -> DriverHealth: ...

_libc: object | None = None


def release_free_heap() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them by default).

    Start-up (YAML parsing, pydantic schema building) frees several MB that glibc would keep
    resident for the life of the process; on a 1 GB gateway that matters. A no-op elsewhere.
    """
    global _libc
    if _libc is None:
        try:
            import ctypes

            _libc = ctypes.CDLL("libc.so.6")
        except OSError:
            _libc = False
    if _libc:
        gc.collect()
        _libc.malloc_trim(0)  # type: ignore[attr-defined]


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def process_rss_bytes() -> int:
    """Resident memory now (Linux); elsewhere the peak, which is what the OS offers."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def process_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    uptime_s: float
    cpu_percent: float
    memory_rss_bytes: int
    disk_free_bytes: int
    drivers: dict[str, DriverHealth]
    counters: dict[str, int]


class HealthReporter:
    def __init__(self, state_dir: Path, drivers: Iterable[HealthSource],
                 counters: CounterSource) -> None:
        self._state_dir = state_dir
        self._drivers = list(drivers)
        self._counters = counters
        self._started = time.monotonic()
        self._last_cpu = (self._started, process_cpu_seconds())

    def set_sources(self, drivers: Iterable[HealthSource]) -> None:
        """After a remote configuration restarted some drivers."""
        self._drivers = list(drivers)

    def snapshot(self) -> HealthSnapshot:
        drivers: dict[str, DriverHealth] = {}
        for driver in self._drivers:
            try:
                drivers[driver.name] = driver.health()
            except Exception as exc:  # a broken driver must not stop the others' health
                log_event(log, "driver_health_failed", logging.ERROR, driver=driver.name,
                          error=repr(exc))
                drivers[driver.name] = DriverHealth(state=DriverState.DOWN, detail=repr(exc)[:500])
        counters = dict(self._counters())
        # Drivers count the samples they rejected as "implausible"; health reports the total.
        counters["invalid_readings"] = sum(
            h.counters.get("implausible", 0) for h in drivers.values()
        )
        release_free_heap()
        try:
            disk_free = shutil.disk_usage(self._state_dir).free
        except OSError:
            disk_free = 0
        now, cpu = time.monotonic(), process_cpu_seconds()
        then, cpu_then = self._last_cpu
        self._last_cpu = (now, cpu)
        cpu_percent = 100.0 * (cpu - cpu_then) / (now - then) if now > then else 0.0
        return HealthSnapshot(
            uptime_s=round(now - self._started, 3),
            cpu_percent=round(max(cpu_percent, 0.0), 2),
            memory_rss_bytes=process_rss_bytes(),
            disk_free_bytes=disk_free,
            drivers=drivers,
            counters=counters,
        )
