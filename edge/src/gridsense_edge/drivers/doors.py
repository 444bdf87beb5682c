"""Doors a reader driver guards, for devices mounted at them that have no lock of their own
(QR scanners): the door's driver registers how to present a scanned pass there, the scanner
looks the door up by id. Keyed by the agent's state folder, so agents in one process (tests)
never see each other's doors."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

Present = Callable[[str, str], None]  # (scanned text, the scanner's point)
_DOORS: dict[tuple[str, str], Present] = {}


def register_door(state_dir: Path, door: str, present: Present) -> None:
    _DOORS[(str(state_dir), door)] = present


def unregister_door(state_dir: Path, door: str, present: Present) -> None:
    if _DOORS.get((str(state_dir), door)) is present:
        del _DOORS[(str(state_dir), door)]


def door_for(state_dir: Path, door: str) -> Present | None:
    return _DOORS.get((str(state_dir), door))


def guarded_doors(devices: Iterable[Any]) -> set[str]:
    """Door ids the config's reader devices guard (a device that guards one says so with
    ``guards_door``)."""
    return {d.door_id for d in devices if getattr(d, "guards_door", False)}
