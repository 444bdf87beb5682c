"""Scan an RS-485 line for Modbus RTU slaves, within a time bound, and match device profiles."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from ..drivers.modbus.bus import (
    BadFrame,
    BusConfig,
    BusDown,
    CrcError,
    ExceptionResponse,
    ModbusBus,
    ModbusError,
    NoResponse,
)
from ..drivers.modbus.profiles import ModbusProfile, SerialDefaults, Table
from .progress import Progress, quiet

UNKNOWN = "未知 — 请选择型号 / unknown — pick a profile"
Answer = Literal["answered", "exception", "garbled"]


@dataclass(frozen=True, slots=True)
class ScanLimits:
    ids: tuple[int, ...] = tuple(range(1, 248))
    per_id_s: float = 0.15  # a present sensor answers within tens of ms at 9600 baud
    overall_s: float = 60.0


@dataclass
class FoundSlave:
    slave: int
    answer: Answer
    detail: str
    profile: str | None = None  # proposed from identifying registers
    candidates: list[str] = field(default_factory=list)  # profiles whose readings are plausible

    def to_json(self) -> dict[str, Any]:
        return {"slave": self.slave, "answer": self.answer, "detail": self.detail,
                "profile": self.profile, "candidates": self.candidates,
                "note": None if self.profile else UNKNOWN}


@dataclass
class ModbusScan:
    port: str
    serial: SerialDefaults
    found: list[FoundSlave] = field(default_factory=list)
    scanned: list[int] = field(default_factory=list)
    complete: bool = True  # False: the overall bound stopped the scan early
    error: str | None = None
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"port": self.port, "serial": self.serial.model_dump(),
                "found": [f.to_json() for f in self.found],
                "scanned_ids": _ranges(self.scanned), "complete": self.complete,
                "error": self.error, "elapsed_s": round(self.elapsed_s, 2)}


async def scan_modbus(port: str, serial: SerialDefaults, profiles: list[ModbusProfile],
                      limits: ScanLimits = ScanLimits(), progress: Progress = quiet
                      ) -> ModbusScan:
    result = ModbusScan(port, serial)
    bus = ModbusBus(BusConfig(id="discover", port=port, timeout_s=limits.per_id_s), serial)
    started = time.monotonic()
    deadline = started + limits.overall_s
    try:
        for index, slave in enumerate(limits.ids):
            # A silent id costs per_id_s; stop before the bound rather than after it.
            if time.monotonic() + limits.per_id_s > deadline:
                result.complete = False
                progress(f"modbus {port}: time bound {limits.overall_s:g} s reached at id {slave}")
                break
            if index % 16 == 0:
                progress(f"modbus {port}: id {slave} ({index}/{len(limits.ids)}), "
                         f"{len(result.found)} found")
            found = await _probe(bus, slave, limits.per_id_s)
            result.scanned.append(slave)
            if found is not None:
                if found.answer != "garbled":
                    await _match(bus, found, profiles, limits.per_id_s)
                named = found.detail if found.answer == "garbled" else found.profile or UNKNOWN
                progress(f"modbus {port}: slave {slave} {found.answer}: {named}")
                result.found.append(found)
    except BusDown as exc:
        result.error = f"cannot use {port}: {exc}"
        result.complete = False
    finally:
        await bus.close()
        result.elapsed_s = time.monotonic() - started
    return result


async def _read(bus: ModbusBus, slave: int, table: Table, address: int, count: int,
                timeout_s: float) -> list[int]:
    # The bus has its own timeout; this one bounds a library that ignores it.
    try:
        return await asyncio.wait_for(bus.read(slave, table, address, count), timeout_s * 4 + 1)
    except TimeoutError:
        raise NoResponse("no response") from None


async def _probe(bus: ModbusBus, slave: int, timeout_s: float) -> FoundSlave | None:
    """Any valid answer (even "illegal address") proves a device; damaged frames are noted."""
    try:
        words = await _read(bus, slave, Table.HOLDING, 0, 1, timeout_s)
    except ExceptionResponse as exc:
        return FoundSlave(slave, "exception", f"answered holding 0 with exception {exc.code}")
    except (CrcError, BadFrame) as exc:
        return FoundSlave(slave, "garbled", f"answers with damaged frames ({exc}): check the "
                          "baud rate, A/B wiring and termination / 应答帧损坏：检查波特率、A/B "
                          "接线与终端电阻")
    except NoResponse:
        return None
    return FoundSlave(slave, "answered", f"holding 0 = {words[0]}")


async def _match(bus: ModbusBus, found: FoundSlave, profiles: list[ModbusProfile],
                 timeout_s: float) -> None:
    for profile in profiles:
        if profile.identify and await _identified(bus, found.slave, profile, timeout_s):
            found.profile = profile.id
            break
    for profile in profiles:
        if await _plausible(bus, found.slave, profile, timeout_s):
            found.candidates.append(profile.id)


async def _identified(bus: ModbusBus, slave: int, profile: ModbusProfile, timeout_s: float
                      ) -> bool:
    for ident in profile.identify:
        try:
            words = await _read(bus, slave, ident.table, ident.address, 1, timeout_s)
        except ModbusError:
            return False
        if words[0] != ident.equals:
            return False
    return True


async def _plausible(bus: ModbusBus, slave: int, profile: ModbusProfile, timeout_s: float
                     ) -> bool:
    """Every register of the profile answers with a value in its valid range."""
    for reg in profile.registers:
        try:
            words = await _read(bus, slave, reg.table, reg.address, reg.count, timeout_s)
        except ModbusError:
            return False
        if not reg.plausible(reg.decode(words)):
            return False
    return True


def _ranges(ids: list[int]) -> str:
    """[1, 2, 3, 7] -> "1-3,7": the ids a partial scan covered."""
    spans: list[str] = []
    start = prev = None
    for i in ids:
        if start is not None and prev is not None and i == prev + 1:
            prev = i
            continue
        if start is not None:
            spans.append(f"{start}-{prev}" if start != prev else f"{start}")
        start = prev = i
    if start is not None:
        spans.append(f"{start}-{prev}" if start != prev else f"{start}")
    return ",".join(spans)


def parse_ids(text: str, low: int, high: int) -> tuple[int, ...]:
    """"1-10,15" -> (1..10, 15); each id within low..high."""
    ids: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        a, b = int(first), int(last or first)
        if not (low <= a <= b <= high):
            raise ValueError(f"{part}: ids must be within {low}..{high}")
        ids.extend(range(a, b + 1))
    if not ids:
        raise ValueError("no ids given")
    return tuple(dict.fromkeys(ids))
