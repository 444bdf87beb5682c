"""Scan an OSDP line for readers: each one's identity (osdp_PDID) and capabilities (osdp_PDCAP).

Both are answered before a secure channel exists, so no reader key is needed. A control panel
polls every address of a batch; an absent address costs one reply timeout, then libosdp parks it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..drivers.osdp.line import SerialChannel, start_refresh
from .progress import Progress, quiet

BATCH = 32  # addresses per control panel (libosdp's status masks are machine words)
PER_ADDRESS_S = 0.25  # measured: an absent address costs libosdp ~0.17 s per pass
SETTLE_S = 1.0  # a present reader's ID and CAP replies after its first poll

# osdp_PDCAP function codes worth showing to an installer (IEC 60839-11-5, table 6).
CAPABILITIES = {
    "contact_status_monitoring": "ContactStatusMonitoring",
    "output_control": "OutputControl",
    "card_data_format": "CardDataFormat",
    "led_control": "LEDControl",
    "audible_output": "AudibleControl",
    "text_output": "TextOutput",
    "time_keeping": "TimeKeeping",
    "check_character": "CheckCharacter",
    "communication_security": "CommunicationSecurity",
    "readers": "Readers",
    "biometrics": "Biometrics",
}


@dataclass
class FoundReader:
    address: int
    vendor_code: int
    model: int
    version: int
    serial_number: int
    firmware: str
    capabilities: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def secure_channel(self) -> bool:
        return self.capabilities.get("communication_security", {}).get("level", 0) > 0

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "vendor_code": f"{self.vendor_code:06X}",
                "model": self.model, "version": self.version,
                "serial_number": f"{self.serial_number:08X}", "firmware": self.firmware,
                "secure_channel": self.secure_channel, "capabilities": self.capabilities}


@dataclass
class OsdpScan:
    port: str
    baudrate: int
    found: list[FoundReader] = field(default_factory=list)
    complete: bool = True
    error: str | None = None
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"port": self.port, "baudrate": self.baudrate,
                "found": [r.to_json() for r in self.found], "complete": self.complete,
                "error": self.error, "elapsed_s": round(self.elapsed_s, 2)}


def scan_osdp(port: str, addresses: tuple[int, ...], baudrate: int = 9600,
              overall_s: float = 60.0, progress: Progress = quiet,
              stop: threading.Event | None = None) -> OsdpScan:
    result = OsdpScan(port, baudrate)
    started = time.monotonic()
    deadline = started + overall_s
    counters = {"serial_errors": 0}
    try:
        channel = SerialChannel(port, baudrate, counters)
    except Exception as exc:
        result.error = f"cannot open {port}: {exc}"
        result.complete = False
        return result
    try:
        for first in range(0, len(addresses), BATCH):
            batch = addresses[first:first + BATCH]
            budget = SETTLE_S + PER_ADDRESS_S * len(batch)
            if time.monotonic() + budget > deadline:
                result.complete = False
                progress(f"osdp {port}: time bound {overall_s:g} s reached at address {batch[0]}")
                break
            progress(f"osdp {port}: addresses {batch[0]}-{batch[-1]}, "
                     f"{len(result.found)} readers so far")
            for reader in _scan_batch(channel, batch, budget, stop):
                progress(f"osdp {port}: reader at address {reader.address}, vendor "
                         f"{reader.vendor_code:06X} model {reader.model}")
                result.found.append(reader)
            if channel.broken:
                result.error = f"{port} failed during the scan"
                result.complete = False
                break
    finally:
        channel.close()
        result.elapsed_s = time.monotonic() - started
    return result


def _scan_batch(channel: SerialChannel, batch: tuple[int, ...], budget_s: float,
                stop: threading.Event | None) -> list[FoundReader]:
    import osdp

    infos = [osdp.PDInfo(a, channel, scbk=None, flags=[], name=f"scan-{a}") for a in batch]
    cp = osdp.ControlPanel(infos, log_level=osdp.LogLevel.Emergency)
    start_refresh(cp)
    identities: dict[int, dict[str, int]] = {}
    try:
        end = time.monotonic() + budget_s
        while time.monotonic() < end and not (stop and stop.is_set()):
            for index, address in enumerate(batch):
                if address not in identities:
                    identity = _identity(cp, index)
                    if identity is not None:
                        identities[address] = identity
            time.sleep(0.05)
        # The whole budget has passed: a reader seen has had time for its PDCAP reply too.
        return [_reader(cp, address, batch.index(address), identity)
                for address, identity in sorted(identities.items())]
    finally:
        with contextlib.suppress(RuntimeError):
            cp.stop()


def _identity(cp: Any, index: int) -> dict[str, int] | None:
    with cp.lock:
        identity = cp.ctx.get_pd_id(index)
    # An address nobody answered keeps libosdp's all-zero identity.
    if isinstance(identity, dict) and any(identity.values()):
        return {k: int(v) for k, v in identity.items()}
    return None


def _reader(cp: Any, address: int, index: int, identity: dict[str, int]) -> FoundReader:
    import osdp

    capabilities = {}
    check: Callable[[int, int], tuple[int, int]] = cp.ctx.check_capability
    for name, attr in CAPABILITIES.items():
        with cp.lock:
            level, items = check(index, getattr(osdp.Capability, attr))
        if level or items:
            capabilities[name] = {"level": int(level), "items": int(items)}
    firmware = identity.get("firmware_version", 0) & 0xFFFFFF
    return FoundReader(
        address, identity.get("vendor_code", 0) & 0xFFFFFF, identity.get("model", 0),
        identity.get("version", 0), identity.get("serial_number", 0) & 0xFFFFFFFF,
        f"{firmware >> 16}.{(firmware >> 8) & 0xFF}.{firmware & 0xFF}", capabilities)
