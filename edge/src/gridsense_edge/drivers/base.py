"""The tiny interface every device driver implements, and what the agent hands it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from gridsense_protocol import Command, ConfigUpdate, DriverHealth, Reading

from ..configtypes import POINTS_SEEN, Identifier, context_of
from ..health import HealthSource
from ..plugins import PluginRegistry
from ..portlease import PortLeases

if TYPE_CHECKING:
    from ..events import AccessRecord

# (sample, report): every sample feeds the rules; ``report`` says whether it also goes into
# telemetry (it changed beyond the deadband, or the periodic refresh is due).
ReadingSink = Callable[[Reading, bool], None]
# Stores an incident event (on disk when it returns) and gives back its event id; a JPEG given
# as ``snapshot`` is stored right after it and published on .../snapshot/{event id}.
IncidentSink = Callable[..., str]  # (event: IncidentEvent, snapshot: bytes | None = None)
# Stores one access event (a decision at a door, a change of its state); gives back its event id.
AccessSink = Callable[["AccessRecord"], str]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CommandReply:
    """What goes back on cmd/result for the server message ``command_id``."""

    command_id: str
    ok: bool
    result: dict[str, Any]
    error: str | None = None


class DownlinkHandler(Protocol):
    """Server -> gateway messages a driver answers (its commands, its part of the config)."""

    def wants(self, message: Command | ConfigUpdate) -> bool: ...

    def handle(self, message: Command | ConfigUpdate) -> CommandReply | None:
        """The reply to publish, or None when there is nothing to say."""


class Driver(HealthSource, Protocol):
    name: str  # key of this driver in the Health message

    async def run(self) -> None:
        """Poll until cancelled. Must survive device and bus faults on its own."""

    def health(self) -> DriverHealth: ...


class DeviceConfigBase(BaseModel):
    """Fields every device entry has; each driver's model adds ``type`` and its own keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    point: Identifier

    @field_validator("point")
    @classmethod
    def _point_unique(cls, value: str, info: ValidationInfo) -> str:
        seen = context_of(info).setdefault(POINTS_SEEN, set())
        if value in seen:
            raise ValueError(f"point id {value!r} is used by another device (point ids are unique)")
        seen.add(value)
        return value


class SharedResources:
    """Things several drivers share, such as the owner of a serial port, created on first use."""

    def __init__(self) -> None:
        self._items: dict[Any, Any] = {}

    def get_or_create(self, key: Any, factory: Callable[[], T]) -> T:
        if key not in self._items:
            self._items[key] = factory()
        return self._items[key]  # type: ignore[no-any-return]

    async def close(self) -> None:
        for item in self._items.values():
            close = getattr(item, "close", None)
            if close is not None:
                await close()
        self._items.clear()


@dataclass
class DriverContext:
    gateway: str
    emit: ReadingSink
    buses: Mapping[str, Any]  # the config's ``buses:`` by id (drivers.modbus owns the model)
    profiles_dir: Path
    raise_incident: IncidentSink
    shared: SharedResources = field(default_factory=SharedResources)
    record_access: AccessSink | None = None  # None: this agent does not record access events
    state_dir: Path | None = None  # for drivers that keep local state (credential copy)
    # A driver that takes commands or config from the server appends its handler here.
    downlink_handlers: list[DownlinkHandler] = field(default_factory=list)
    # A driver that owns a serial port registers here so it can lend the port to discovery.
    ports: PortLeases = field(default_factory=PortLeases)


# factory(all device configs of this type, context) -> drivers (a driver may serve many devices)
DriverFactory = Callable[[list[Any], DriverContext], list[Driver]]

DRIVERS: PluginRegistry[DriverFactory] = PluginRegistry(
    "driver", "gridsense_edge.drivers",
    index={"camera": "camera.driver", "modbus_temperature": "modbus.temperature",
           "onewire_temperature": "onewire.driver", "osdp_reader": "osdp.driver",
           "qr_hid": "qrscan.hid_scanner", "qr_serial": "qrscan.serial_scanner"},
)
