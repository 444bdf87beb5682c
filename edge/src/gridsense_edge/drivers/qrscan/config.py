"""The scanners' device entries and profiles (firmware_configs/devices/qrscan/)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ...configtypes import PROFILES_DIR, Identifier, context_of, load_profile
from ..base import DeviceConfigBase
from ..doors import guarded_doors

MAX_CODE_CHARS = 1024  # a signed pass is ~180 characters; a longer line is no pass


class ScannerProfile(BaseModel):
    """How a scanner model sends what it read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,63}$")]
    name: str
    interface: Literal["serial", "hid"]
    baudrate: Literal[9600, 19200, 38400, 57600, 115200] = 9600  # serial
    parity: Literal["N", "E", "O"] = "N"
    # what ends one code: a serial line ending, or the key a keyboard-mode scanner presses
    terminator: Literal["cr", "lf", "crlf", "tab"] = "cr"
    prefix: str = ""  # some models put a fixed prefix before every code: stripped
    layout: Literal["us"] = "us"  # keyboard-mode scanners: the layout they are set to


def scanner_profiles_dir(modbus_profiles: Path) -> Path:
    return modbus_profiles.parent / "qrscan"


def load_scanner_profile(profile_id: str, modbus_profiles: Path,
                         interface: str) -> ScannerProfile:
    profile = load_profile(scanner_profiles_dir(modbus_profiles), profile_id, ScannerProfile,
                           "QR scanner")
    if profile.interface != interface:
        raise ValueError(f"profile {profile_id!r} is for a {profile.interface} scanner, "
                         f"not {interface}")
    return profile


class ScannerConfigBase(DeviceConfigBase):
    # the door of an osdp_reader on this gateway: its lock opens, its LED answers
    door: Identifier
    profile: Annotated[str, Field(min_length=1)]

    interface: ClassVar[str] = "serial"  # overridden by each scanner type

    @field_validator("profile")
    @classmethod
    def _profile_ok(cls, value: str, info: ValidationInfo) -> str:
        folder = context_of(info).get(PROFILES_DIR)
        if folder is not None:
            load_scanner_profile(value, Path(folder), cls.interface)
        return value

    def check_among(self, devices: Sequence[Any]) -> str | None:
        """At config load, beside the other devices: the door must be a reader's."""
        doors = guarded_doors(devices)
        if self.door in doors:
            return None
        return (f"没有这个门 / no such door {self.door!r}: no osdp_reader on this gateway "
                f"guards it (doors here: {', '.join(sorted(doors)) or 'none'})")


class QrSerialConfig(ScannerConfigBase):
    type: Literal["qr_serial"]
    port: Annotated[str, Field(min_length=1)]  # e.g. /dev/ttyACM0 or /dev/ttyUSB0
    profile: Annotated[str, Field(min_length=1)] = "generic-serial"
    interface: ClassVar[str] = "serial"


class QrHidConfig(ScannerConfigBase):
    type: Literal["qr_hid"]
    # the scanner's input device, best by its stable name:
    # /dev/input/by-id/usb-<vendor>_<model>-event-kbd
    device: Annotated[str, Field(min_length=1)]
    profile: Annotated[str, Field(min_length=1)] = "generic-hid"
    interface: ClassVar[str] = "hid"
