"""Electronic passes at a door: the decision with the gateway's clock trust, counted for the
health report."""

from __future__ import annotations

from ...clock import ClockTrust, clock_trust
from .config import OsdpReaderConfig
from .credentials import CredentialStore
from .decisions import Decision
from .passdecide import PASS_PREFIX, PassContext, decide_pass

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
