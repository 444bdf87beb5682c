"""The ``osdp_reader`` device entry of the gateway config; driver.py registers it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from gridsense_protocol import Severity

from ...clock import ClockSource
from ...configtypes import PROFILES_DIR, Identifier, ResolvedPath, context_of
from ..base import DeviceConfigBase
from .door import DoorPolicy
from .line import load_reader_profile, read_key_file

OSDP_KEYS_SEEN = "osdp_addresses_seen"


class OsdpReaderConfig(DeviceConfigBase):
    type: Literal["osdp_reader"]
    port: Annotated[str, Field(min_length=1)]  # the RS-485 adapter, e.g. /dev/ttyUSB0
    address: Annotated[int, Field(ge=0, le=126)] = 1
    key_file: ResolvedPath
    profile: Annotated[str, Field(min_length=1)] = "generic-reader"
    door: Identifier | None = None  # default: the point id
    building: Identifier | None = None
    held_open_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    unlock_s: Annotated[float, Field(gt=0, le=25)] = 5.0  # osdp_OUT timer: 100 ms units, ≤ 255
    rex_window_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    denied_burst: Annotated[int, Field(ge=1, le=100)] = 5
    denied_window_min: Annotated[float, Field(gt=0, le=1440)] = 2.0
    passback_grants: Annotated[int, Field(ge=0, le=100)] = 3  # 0: off
    passback_window_s: Annotated[float, Field(gt=0, le=3600)] = 120.0
    # models/access_anomaly: granted swipes scoring above its threshold raise access_anomaly
    anomaly_model: ResolvedPath | None = None
    anomaly_severity: Severity = Severity.MINOR
    # Electronic passes (QR, through this reader or a scanner mounted at its door): what says
    # the clock was synchronised since boot (clock.py), and the allowance at a window's edges.
    pass_clock: ClockSource = "auto"
    pass_skew_s: Annotated[float, Field(ge=0, le=600)] = 60.0

    @field_validator("anomaly_model")
    @classmethod
    def _model_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a file (train one: models/access_anomaly/train.py)")
        return value

    @field_validator("key_file")
    @classmethod
    def _key_ok(cls, value: Path) -> Path:
        if not value.is_file():
            raise ValueError(f"{value} is not a file (it should hold this reader's OSDP key)")
        read_key_file(value)
        return value

    @field_validator("profile")
    @classmethod
    def _profile_ok(cls, value: str, info: ValidationInfo) -> str:
        folder = context_of(info).get(PROFILES_DIR)
        if folder is not None:
            load_reader_profile(value, Path(folder))
        return value

    @field_validator("address")
    @classmethod
    def _address_unique(cls, value: int, info: ValidationInfo) -> int:
        port = info.data.get("port")
        seen = context_of(info).setdefault(OSDP_KEYS_SEEN, set())
        if (port, value) in seen:
            raise ValueError(f"address {value} is used by another reader on {port}")
        seen.add((port, value))
        return value

    guards_door: ClassVar[bool] = True  # QR scanners can be mounted at its door

    @property
    def door_id(self) -> str:
        return self.door or self.point

    def policy(self) -> DoorPolicy:
        return DoorPolicy(held_open_s=self.held_open_s, unlock_s=self.unlock_s,
                          rex_window_s=self.rex_window_s, denied_burst=self.denied_burst,
                          denied_window_s=self.denied_window_min * 60.0,
                          passback_grants=self.passback_grants,
                          passback_window_s=self.passback_window_s)
