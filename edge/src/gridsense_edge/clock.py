"""Can the gateway trust its wall clock? A Raspberry Pi has no real-time clock: after a boot
without network it counts from the last saved time, so a time-bounded pass must not be judged
until the clock has been synchronised since boot.

Sources (``pass_clock`` in the device config):

- ``kernel``: adjtimex(2) — the kernel clears STA_UNSYNC (and stops answering TIME_ERROR) once
  an NTP client (chrony, ntpd, systemd-timesyncd) has disciplined the clock;
- ``timesyncd``: systemd-timesyncd's ``/run/systemd/timesync/synchronized``, created on its
  first synchronisation of this boot (``/run`` is a tmpfs: gone at the next boot);
- ``auto``: either of the two;
- ``rtc``: the installer vouches for a battery-backed clock (a HAT with an RTC): always trusted.

Once synchronised, the clock stays trusted for the life of the process (an NTP client that
later loses the network keeps the kernel's STA_UNSYNC off for hours, then sets it: the clock is
still good) unless the wall clock jumps against the monotonic clock while no source vouches
for it — someone set the time by hand.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from .logs import log_event

log = logging.getLogger(__name__)

ClockSource = Literal["auto", "kernel", "timesyncd", "rtc"]
TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")
STA_UNSYNC = 0x0040
TIME_ERROR = 5
CHECK_EVERY_S = 1.0  # probes are cheap, but a burst of scans needs only one
JUMP_S = 5.0  # a wall-clock step this large, unvouched, withdraws the trust

Probe = Callable[[], bool]


class _Timex(ctypes.Structure):
    # struct timex (linux/timex.h) up to ``tai``, then the kernel's reserved padding.
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long),
                ("status", ctypes.c_int), ("constant", ctypes.c_long),
                ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long),
                ("tick", ctypes.c_long), ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long),
                ("shift", ctypes.c_int), ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long),
                ("calcnt", ctypes.c_long), ("errcnt", ctypes.c_long),
                ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
                ("_padding", ctypes.c_int * 11)]


def kernel_synchronised() -> bool:
    """adjtimex with modes 0 only reads; False when the call is not available."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name, use_errno=True)
    timex = _Timex()
    state = libc.adjtimex(ctypes.byref(timex))
    if state == -1 and not _WARNED:
        _WARNED.append(True)  # once per process: a sandbox that refuses the call stays so
        log_event(log, "clock_kernel_unreadable", logging.WARNING,
                  error=os.strerror(ctypes.get_errno()),
                  hint="a systemd unit with ProtectClock= refuses even a read-only adjtimex; "
                       "use pass_clock: timesyncd or drop ProtectClock")
    return state not in (-1, TIME_ERROR) and not timex.status & STA_UNSYNC


_WARNED: list[bool] = []


def timesyncd_synchronised(flag: Path = TIMESYNCD_FLAG) -> bool:
    return flag.exists()


def probe_for(source: ClockSource) -> Probe:
    if source == "kernel":
        return kernel_synchronised
    if source == "timesyncd":
        return timesyncd_synchronised
    if source == "rtc":
        return lambda: True
    return lambda: timesyncd_synchronised() or kernel_synchronised()


class ClockTrust:
    """``trusted()`` before judging a time-bounded pass. ``probe``, ``wall`` and ``mono`` are
    injectable (tests: a probe that says what the test needs)."""

    def __init__(self, source: ClockSource = "auto", probe: Probe | None = None,
                 wall: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self._probe = probe or probe_for(source)
        self._wall, self._mono = wall, mono
        self._synced = False
        self._checked_at = float("-inf")
        self._offset: float | None = None  # wall - monotonic when last trusted
        self._state: bool | None = None
        self.changes = 0

    def trusted(self) -> bool:
        mono = self._mono()
        if self._synced and self._offset is not None:
            offset = self._wall() - mono
            if abs(offset - self._offset) > JUMP_S and not self._probe():
                self._synced = False  # stepped while nobody vouches for it
                self._set(False, jump_s=round(offset - self._offset, 1))
                self._checked_at = mono
            else:
                self._offset = offset
        if not self._synced and mono - self._checked_at >= CHECK_EVERY_S:
            self._checked_at = mono
            if self._probe():
                self._synced = True
                self._offset = self._wall() - mono
        self._set(self._synced)
        return self._synced

    def _set(self, state: bool, **details: object) -> None:
        """Logged once per change of state, not once per scan."""
        if state == self._state:
            return
        first = self._state is None
        self._state = state
        if first and state:
            return
        self.changes += 1
        log_event(log, "clock_synchronised" if state else "clock_unsynchronised",
                  logging.INFO if state else logging.WARNING, source=self.source, **details)


_SHARED: dict[ClockSource, ClockTrust] = {}


def clock_trust(source: ClockSource) -> ClockTrust:
    """One per source and process: every door asks the same one."""
    if source not in _SHARED:
        _SHARED[source] = ClockTrust(source)
    return _SHARED[source]
