"""Device profiles: register maps kept as YAML data in firmware_configs/, not as code."""

from __future__ import annotations

import struct
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gridsense_protocol.yamlconfig import load_yaml_file

from ...configtypes import default_profiles_dir


class Table(StrEnum):
    HOLDING = "holding"  # function 0x03
    INPUT = "input"  # function 0x04


class RegisterType(StrEnum):
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"


_WORDS = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2}
_STRUCT = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f"}


class SerialDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = 9600
    parity: Literal["N", "E", "O"] = "N"
    bytesize: Literal[7, 8] = 8
    stopbits: Literal[1, 2] = 1


class RegisterMap(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")]
    table: Table
    address: Annotated[int, Field(ge=0, le=65535)]
    type: RegisterType = RegisterType.INT16
    word_order: Literal["big", "little"] = "big"
    scale: float = 1.0
    offset: float = 0.0
    unit: Annotated[str, Field(max_length=16)]
    valid_range: tuple[float, float]

    @property
    def count(self) -> int:
        return _WORDS[self.type]

    def decode(self, words: list[int]) -> float:
        """Raw 16-bit registers -> engineering value (scale and offset applied)."""
        if len(words) != self.count:
            raise ValueError(f"{self.metric}: expected {self.count} registers, got {len(words)}")
        ordered = words if self.word_order == "big" else list(reversed(words))
        raw = struct.unpack(_STRUCT[self.type], b"".join(w.to_bytes(2, "big") for w in ordered))[0]
        return raw * self.scale + self.offset

    def encode(self, value: float) -> list[int]:
        """Engineering value -> raw registers; the simulator's half of ``decode``."""
        raw: float | int = (value - self.offset) / self.scale
        if self.type != RegisterType.FLOAT32:
            raw = round(raw)
        data = struct.pack(_STRUCT[self.type], raw)
        words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
        return words if self.word_order == "big" else list(reversed(words))

    def plausible(self, value: float) -> bool:
        low, high = self.valid_range
        return low <= value <= high


class IdentifyRegister(BaseModel):
    """A register that holds the same value on every unit of a model (a model or type code):
    discovery reads it to propose this profile. Cheap sensors have none."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table: Table
    address: Annotated[int, Field(ge=0, le=65535)]
    equals: Annotated[int, Field(ge=0, le=65535)]


class ModbusProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,63}$")]
    name: str
    serial: SerialDefaults = SerialDefaults()
    default_slave: Annotated[int, Field(ge=1, le=247)] = 1
    registers: Annotated[list[RegisterMap], Field(min_length=1)]
    identify: list[IdentifyRegister] = []  # all must match for discovery to propose it

    @model_validator(mode="after")
    def _unique_metrics(self) -> ModbusProfile:
        metrics = [r.metric for r in self.registers]
        if len(set(metrics)) != len(metrics):
            raise ValueError("each metric may appear once per profile")
        used = {(r.table, r.address + i) for r in self.registers for i in range(r.count)}
        clash = [i for i in self.identify if (i.table, i.address) in used]
        if clash:
            raise ValueError(f"identify register {clash[0].table.value} {clash[0].address} "
                             "is also a measurement register")
        return self

    def register(self, metric: str) -> RegisterMap:
        for reg in self.registers:
            if reg.metric == metric:
                return reg
        raise KeyError(f"profile {self.id} has no metric {metric!r}")


def load_all_modbus_profiles(directory: Path | None = None) -> list[ModbusProfile]:
    """Every profile of the folder, sorted by id (discovery matches a device against them)."""
    directory = directory or default_profiles_dir()
    return [load_modbus_profile(p.stem, directory) for p in sorted(directory.glob("*.yaml"))]


def load_modbus_profile(profile_id: str, directory: Path | None = None) -> ModbusProfile:
    directory = directory or default_profiles_dir()
    path = directory / f"{profile_id}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in directory.glob("*.yaml")) if directory.is_dir() else []
        raise FileNotFoundError(
            f"no Modbus device profile {profile_id!r} in {directory} "
            f"(known: {', '.join(known) or 'none'})"
        )
    profile = load_yaml_file(path, ModbusProfile)
    if profile.id != profile_id:
        raise ValueError(f"{path}: profile id {profile.id!r} does not match its file name")
    return profile
