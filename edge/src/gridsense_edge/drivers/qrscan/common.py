"""What both scanner drivers share: codes assembled from what the scanner sends, presented at
the door they are mounted at, counted for health."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from gridsense_protocol import DriverHealth, DriverState

from ...backoff import backoff_delay
from ...logs import log_event
from ..base import DriverContext
from ..doors import door_for
from .config import MAX_CODE_CHARS, ScannerConfigBase, ScannerProfile

log = logging.getLogger(__name__)

RETRY_CAP_S = 30.0
T = TypeVar("T")


class CodeLine:
    """Characters until the terminator; bounded (an overlong run is dropped whole)."""

    def __init__(self, profile: ScannerProfile, counters: dict[str, int]) -> None:
        self.profile = profile
        self._chars: list[str] = []
        self._overlong = False
        self._counters = counters

    def feed(self, chars: str) -> list[str]:
        codes = []
        for char in chars:
            if char in "\r\n\t":
                if self._chars and not self._overlong:
                    codes.append(self._finish("".join(self._chars)))
                self._chars.clear()
                self._overlong = False
            elif len(self._chars) >= MAX_CODE_CHARS:
                if not self._overlong:
                    self._counters["overlong"] += 1
                self._overlong = True
            else:
                self._chars.append(char)
        return [c for c in codes if c]

    def _finish(self, code: str) -> str:
        prefix = self.profile.prefix
        return code[len(prefix):] if prefix and code.startswith(prefix) else code.strip()


class ScannerBase:
    """Health and the door; the subclass reads its device in ``run``."""

    def __init__(self, config: ScannerConfigBase, profile: ScannerProfile,
                 context: DriverContext) -> None:
        self.config = config
        self.profile = profile
        self.context = context
        self.state_dir = context.state_dir or Path(".")
        self.counters = dict.fromkeys(("codes", "door_unavailable", "overlong", "errors",
                                       "reopens"), 0)
        self.line = CodeLine(profile, self.counters)
        self.connected = False
        self.detail: str | None = None

    async def open_retrying(self, opener: Callable[[], T], what: str) -> T:
        """Open the scanner's port or device, retrying with backoff (jittered) until it is
        there; the health detail says why not meanwhile."""
        attempt = 0
        while True:
            try:
                handle = await asyncio.to_thread(opener)
            except OSError as exc:
                delay = backoff_delay(attempt, 1.0, RETRY_CAP_S)
                attempt += 1
                self.detail = f"cannot open {what}: {exc}"
                log_event(log, "scanner_unavailable", logging.WARNING, point=self.config.point,
                          path=what, error=str(exc), retry_in_s=round(delay, 1))
                await asyncio.sleep(delay)
                continue
            self.detail, self.connected = None, True
            log_event(log, "scanner_connected", point=self.config.point, path=what,
                      door=self.config.door)
            return handle

    def present(self, code: str) -> None:
        """At the reader's door: its decision, lock, LED, access log and incidents."""
        self.counters["codes"] += 1
        present = door_for(self.state_dir, self.config.door)
        if present is None:  # the door's reader driver is not running (restarting, failed)
            self.counters["door_unavailable"] += 1
            log_event(log, "scanner_door_unavailable", logging.WARNING,
                      point=self.config.point, door=self.config.door)
            return
        present(code, self.config.point)

    def health(self) -> DriverHealth:
        state = DriverState.OK if self.connected else DriverState.DOWN
        device = f"{'connected' if self.connected else 'disconnected'},door={self.config.door}"
        return DriverHealth(state=state, detail=self.detail, counters=dict(self.counters),
                            devices={self.config.point: device})
