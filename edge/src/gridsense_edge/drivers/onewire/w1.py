"""Reading one DS18B20 through the kernel's w1 sysfs files, and its device profile."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from gridsense_protocol.yamlconfig import load_yaml_file


class OneWireProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,63}$")]
    name: str
    family: Annotated[str, Field(pattern=r"^[0-9a-f]{2}$")]
    unit: Annotated[str, Field(max_length=16)]
    valid_range: tuple[float, float]
    power_on_c: float | None = None
    power_on_accept_within_c: Annotated[float, Field(ge=0)] = 10.0


def load_onewire_profile(profile_id: str, modbus_profiles: Path) -> OneWireProfile:
    """``firmware_configs/devices/onewire/<id>.yaml`` (1-Wire profiles sit beside the Modbus
    ones); a wrong id lists the profiles there."""
    path = modbus_profiles.parent / "onewire" / f"{profile_id}.yaml"
    if path.is_file():
        profile = load_yaml_file(path, OneWireProfile)
        if profile.id == profile_id:
            return profile
        raise ValueError(f"{path}: profile id {profile.id!r} does not match its file name")
    known = ", ".join(sorted(p.stem for p in path.parent.glob("*.yaml"))) or "none"
    raise ValueError(f"no 1-Wire device profile {profile_id!r} in {path.parent} (known: {known})")


class Outcome(StrEnum):
    """What one read gave; every value but OK is a counter (and the device's state) in health."""

    OK = "ok"
    MISSING = "missing"  # no such device directory: unplugged, or the bus master is not loaded
    READ_ERROR = "read_error"  # the kernel refused the read (EIO after its own retries)
    CRC_ERROR = "crc_error"  # `crc=.. NO`: the scratchpad came back garbled
    GARBLED = "garbled"  # a file we cannot parse
    POWER_ON = "power_on"  # the 85 °C reset value, dropped
    IMPLAUSIBLE = "implausible"  # outside the profile's range


def read_celsius(device_dir: Path) -> tuple[Outcome, float | None]:
    """One reading from ``device_dir`` (``.../28-xxxxxxxxxxxx``); blocks for the conversion
    (~750 ms on a real bus), so callers run it off the event loop."""
    slave = device_dir / "w1_slave"
    try:
        if slave.exists():
            return parse_w1_slave(slave.read_text(encoding="ascii", errors="replace"))
        if (device_dir / "temperature").exists():
            text = (device_dir / "temperature").read_text(encoding="ascii").strip()
            return (Outcome.OK, int(text) / 1000.0) if _is_int(text) else (Outcome.GARBLED, None)
    except OSError:
        return Outcome.READ_ERROR, None
    return Outcome.MISSING, None


def parse_w1_slave(text: str) -> tuple[Outcome, float | None]:
    """``... : crc=57 YES`` then ``... t=23125`` -> (OK, 23.125)."""
    lines = text.strip().splitlines()
    if len(lines) != 2 or "crc=" not in lines[0]:
        return Outcome.GARBLED, None
    if not lines[0].rstrip().endswith("YES"):
        return Outcome.CRC_ERROR, None
    _, sep, value = lines[1].rpartition("t=")
    value = value.strip()
    if not sep or not _is_int(value):
        return Outcome.GARBLED, None
    return Outcome.OK, int(value) / 1000.0


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()
