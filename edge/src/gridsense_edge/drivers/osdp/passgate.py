"""Electronic passes at a door: the decision with the gateway's clock trust, and the registry
through which a QR scanner mounted at a reader's door reaches that door (its lock, its LED, its
access log and incidents)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from ...clock import ClockTrust, clock_trust
from ...logs import log_event
from .config import OsdpReaderConfig
from .credentials import CredentialStore
from .decisions import Decision
from .passdecide import PASS_PREFIX, PassContext, decide_pass

log = logging.getLogger(__name__)

PASS_BYTES = PASS_PREFIX.encode()
MAX_SCAN_CHARS = 1024  # a pass is ~180 characters; more is no pass (and not logged whole)


def scanned_pass(data: bytes) -> str | None:
    """A card read carrying a pass: OSDP readers pass a scanned QR through as raw card data
    (format unspecified, 8 bits a character; libosdp carries up to 64 bytes)."""
    if not data.startswith(PASS_BYTES):
        return None
    return data.decode("ascii", "replace").strip()


class PassGate:
    """Decides passes for every door of one OSDP line; counts what the health report shows."""

    def __init__(self, store: CredentialStore, counters: dict[str, int],
                 clock: ClockTrust | None = None) -> None:
        self.store = store
        self.clock = clock  # None: the process's own for each reader's ``pass_clock``
        self.counters = counters
        counters.update(passes=0, pass_clock_refused=0, clock_unsynchronised=0)

    def decide(self, text: str, config: OsdpReaderConfig, now: float) -> Decision:
        self.counters["passes"] += 1
        if len(text) > MAX_SCAN_CHARS:
            return Decision(False, "malformed", None, None)
        trusted = (self.clock or clock_trust(config.pass_clock)).trusted()
        self.counters["clock_unsynchronised"] = int(not trusted)
        decision = decide_pass(self.store, text, PassContext(
            config.door_id, config.building, now, trusted, config.pass_skew_s))
        if decision.reason == "clock":
            self.counters["pass_clock_refused"] += 1
        return decision

    @property
    def clock_detail(self) -> str | None:
        if self.counters["clock_unsynchronised"]:
            return "clock not synchronised since boot: passes refused (reason clock)"
        return None


# ---- doors a scanner can be mounted at ----

Present = Callable[[str, str], None]  # (scanned text, the scanner's point)
_DOORS: dict[tuple[str, str], Present] = {}


def register_door(state_dir: Path, door: str, present: Present) -> None:
    """Per agent (its state folder) and door id; the OSDP bus registers while it runs."""
    _DOORS[(str(state_dir), door)] = present


def unregister_door(state_dir: Path, door: str, present: Present) -> None:
    if _DOORS.get((str(state_dir), door)) == present:
        del _DOORS[(str(state_dir), door)]


def door_for(state_dir: Path, door: str) -> Present | None:
    return _DOORS.get((str(state_dir), door))


def log_unavailable(point: str, door: str) -> None:
    log_event(log, "scanner_door_unavailable", logging.WARNING, point=point, door=door)
