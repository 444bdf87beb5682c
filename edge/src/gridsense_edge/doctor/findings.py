"""What one check found: ok, a fault (with its fix, Chinese first), or skipped (and why)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    OK = "ok"
    FAULT = "fault"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Finding:
    check: str  # e.g. "broker", "serial:rs485-1", "device:gw-07.boiler"
    status: Status
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"status": self.status.value}


def ok(check: str, detail: str) -> Finding:
    return Finding(check, Status.OK, detail)


def fault(check: str, detail: str, fix: str) -> Finding:
    return Finding(check, Status.FAULT, detail, fix)


def skipped(check: str, why: str) -> Finding:
    return Finding(check, Status.SKIPPED, why)
